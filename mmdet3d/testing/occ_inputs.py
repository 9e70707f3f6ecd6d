"""Synthetic, geometrically consistent detector inputs (``docs/data_flow.md`` section 3).

A toy world in global coordinates: flat ground (z = 0, class 11), a cylindrical wall of radius
25 m around the key ego position (height 4 m, class 15) and a 4 x 2 x 1.6 m car (class 4) that
drives along +x at 4 m per keyframe. The ego drives along +x at 4 m per keyframe with a slight
yaw. Every camera pixel is ray-cast into this world, which gives the images (texture from the hit
point), the sparse key-frame depth, the LiDAR-like render rays of the 7 render frames, the
Occ3D-like voxel labels and the occupancy flow of the car.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mmdet3d.datasets.transforms.bev_aug import flip_flow_rows
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_data_sample import OccDataSample
from mmdet3d.structures.occ3d import FREE_LABEL, POINT_CLOUD_RANGE

RENDER_FRAME_IDS = (-3, -2, -1, 0, 1, 2, 3)
NUM_INPUT_FRAMES = 3  # t, t-1, t-2
GROUND, WALL, CAR, FREE = 11, 15, 4, FREE_LABEL
WALL_RADIUS, WALL_HEIGHT = 25.0, 4.0
EGO_STEP, CAR_STEP = 4.0, 4.0  # metres per keyframe along +x
CAR_CENTRE = (10.0, 3.0, 0.8)  # key ego frame at offset 0 (x, y, z)
CAR_HALF = (2.0, 1.0, 0.8)
CAMERA_YAWS = (0.0, math.pi, math.radians(55.0), math.radians(-55.0), math.radians(125.0),
               math.radians(-125.0))
CAMERA_HEIGHT = 1.5
KEY_EGO_TRANSLATION = (300.0, 200.0, 0.0)


@dataclass(frozen=True)
class Geometry:
    """Sizes of the synthetic batch; defaults match the tiny golden config.

    Attributes:
        cams: number of cameras N.
        height, width: image size H x W.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the voxel grid, metres.
        grid_size: (X, Y, Z) voxels.
    """

    cams: int = 2
    height: int = 64
    width: int = 192
    pc_range: tuple[float, ...] = POINT_CLOUD_RANGE
    grid_size: tuple[int, int, int] = (32, 32, 8)


def _rot_z(yaw: float) -> Tensor:
    """(3, 3) float64 rotation about z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _pose(rot: Tensor, trans: Tensor) -> Tensor:
    """(4, 4) float64 rigid transform."""
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3], pose[:3, 3] = rot, trans
    return pose


def sensor2ego(cam: int) -> Tensor:
    """(4, 4) camera -> ego; cameras are x right, y down, z forward, at 1.5 m height."""
    cam_to_ego_axes = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
                                   dtype=torch.float64)
    yaw = CAMERA_YAWS[cam]
    position = torch.tensor([1.0 * math.cos(yaw), 1.0 * math.sin(yaw), CAMERA_HEIGHT],
                            dtype=torch.float64)
    return _pose(_rot_z(yaw) @ cam_to_ego_axes, position)


def ego2global(offset: int) -> Tensor:
    """(4, 4) ego -> global at keyframe offset ``offset`` (negative = past)."""
    yaw = 0.03 * offset
    trans = torch.tensor(KEY_EGO_TRANSLATION, dtype=torch.float64)
    trans[0] += EGO_STEP * offset
    return _pose(_rot_z(yaw), trans)


def intrinsics(geo: Geometry) -> Tensor:
    """(3, 3) float64 pinhole K with a ~77 degree horizontal field of view."""
    focal = geo.width / 1.6
    return torch.tensor([[focal, 0.0, geo.width / 2], [0.0, focal, geo.height / 2],
                         [0.0, 0.0, 1.0]], dtype=torch.float64)


def car_centre_global(offset: int) -> Tensor:
    """(3,) global car centre at keyframe offset ``offset``."""
    centre = torch.tensor(CAR_CENTRE, dtype=torch.float64)
    centre[0] += CAR_STEP * offset
    return (ego2global(0) @ torch.cat([centre, centre.new_ones(1)]))[:3]


def cast(origin: Tensor, dirs: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Ray-cast the world at keyframe offset ``offset``.

    Args:
        origin: (3,) global ray origin.
        dirs: (P, 3) global directions (any length; the hit is ``origin + t * dirs``).
        offset: keyframe offset (the car position).

    Returns:
        ``(t, label)``: (P,) float64 ray parameter of the first hit (inf for none) and (P,) int64
        class.
    """
    inf = torch.full(dirs.shape[:1], math.inf, dtype=torch.float64)
    t_ground = torch.where(dirs[:, 2] < -1e-9, -origin[2] / dirs[:, 2], inf)
    # Wall: |xy - c| = R from inside, c the key ego position.
    rel = origin[:2] - torch.tensor(KEY_EGO_TRANSLATION[:2], dtype=torch.float64)
    a = (dirs[:, :2] ** 2).sum(-1)
    b = 2.0 * (dirs[:, :2] * rel).sum(-1)
    c = (rel ** 2).sum() - WALL_RADIUS ** 2
    t_wall = (-b + torch.sqrt(b ** 2 - 4.0 * a * c)) / (2.0 * a)
    z_wall = origin[2] + t_wall * dirs[:, 2]
    t_wall = torch.where((z_wall >= 0.0) & (z_wall <= WALL_HEIGHT), t_wall, inf)
    # Car: slab test against an axis-aligned box in the key ego frame's axes (global yaw 0).
    centre, half = car_centre_global(offset), torch.tensor(CAR_HALF, dtype=torch.float64)
    safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t0, t1 = (centre - half - origin) / safe, (centre + half - origin) / safe
    t_near = torch.minimum(t0, t1).amax(-1)
    t_far = torch.maximum(t0, t1).amin(-1)
    t_car = torch.where((t_near <= t_far) & (t_near > 0.0), t_near, inf)
    hits = torch.stack([t_ground, t_wall, t_car], dim=-1)  # (P, 3)
    t, which = hits.min(dim=-1)
    label = torch.tensor([GROUND, WALL, CAR])[which]
    return t, label


def _pixel_rays(geo: Geometry) -> Tensor:
    """(H*W, 3) camera-frame directions of the pixel centres, z = 1 (row-major pixels)."""
    v, u = torch.meshgrid(torch.arange(geo.height, dtype=torch.float64),
                          torch.arange(geo.width, dtype=torch.float64), indexing='ij')
    k = intrinsics(geo)
    dirs = torch.stack([(u + 0.5 - k[0, 2]) / k[0, 0], (v + 0.5 - k[1, 2]) / k[1, 1],
                        torch.ones_like(u)], dim=-1)
    return dirs.reshape(-1, 3)


def _cam2global(cam: int, offset: int) -> Tensor:
    return ego2global(offset) @ sensor2ego(cam)


def render_view(geo: Geometry, cam: int, offset: int) -> tuple[Tensor, Tensor]:
    """Z-depth (H, W) (inf = no hit) and class (H, W) of camera ``cam`` at ``offset``."""
    dirs_cam = _pixel_rays(geo)
    pose = _cam2global(cam, offset)
    t, label = cast(pose[:3, 3], dirs_cam @ pose[:3, :3].T, offset)
    return t.view(geo.height, geo.width), label.view(geo.height, geo.width)


def render_image(geo: Geometry, cam: int, offset: int) -> Tensor:
    """(3, H, W) float32 normalised image: class colour plus a texture of the hit point."""
    dirs_cam = _pixel_rays(geo)
    pose = _cam2global(cam, offset)
    dirs = dirs_cam @ pose[:3, :3].T
    t, label = cast(pose[:3, 3], dirs, offset)
    hit = pose[:3, 3] + torch.where(torch.isinf(t), torch.zeros_like(t), t)[:, None] * dirs
    colours = torch.zeros(18, 3, dtype=torch.float64)
    colours[GROUND], colours[WALL], colours[CAR] = (torch.tensor([-0.5, -0.5, -0.3]),
                                                    torch.tensor([0.6, 0.2, -0.2]),
                                                    torch.tensor([0.1, 0.9, 1.2]))
    texture = torch.sin(1.7 * hit[:, 0]) * torch.cos(1.3 * hit[:, 1]) + 0.5 * torch.sin(
        2.1 * hit[:, 2])
    img = colours[label] + 0.4 * texture[:, None]
    img[torch.isinf(t)] = torch.tensor([1.2, 1.4, 1.8], dtype=torch.float64)  # sky
    return img.T.reshape(3, geo.height, geo.width).float()


def camera_inputs(geo: Geometry, bda: Tensor) -> CameraInputs:
    """One sample's camera inputs (no batch dim): imgs camera-major, transforms frame-major."""
    imgs = torch.stack([render_image(geo, cam, -fid) for cam in range(geo.cams)
                        for fid in range(NUM_INPUT_FRAMES)])  # (N*F, 3, H, W)
    views = [(cam, fid) for fid in range(NUM_INPUT_FRAMES) for cam in range(geo.cams)]
    sensor2egos = torch.stack([sensor2ego(cam) for cam, _ in views]).float()
    ego2globals = torch.stack([ego2global(-fid) for _, fid in views]).float()
    return CameraInputs(imgs=imgs, sensor2egos=sensor2egos, ego2globals=ego2globals,
                        intrins=intrinsics(geo).float().expand(len(views), 3, 3).clone(),
                        post_rots=torch.eye(3).expand(len(views), 3, 3).clone(),
                        post_trans=torch.zeros(len(views), 3), bda=bda)


def gt_depth(geo: Geometry) -> Tensor:
    """(N, H, W) sparse key-frame z-depth, 0 where no LiDAR point (every 3rd row, 2nd column)."""
    depth = torch.stack([render_view(geo, cam, 0)[0] for cam in range(geo.cams)])
    keep = torch.zeros(geo.height, geo.width, dtype=torch.bool)
    keep[1::3, ::2] = True
    depth = torch.where(keep & torch.isfinite(depth) & (depth < 39.0), depth,
                        torch.zeros_like(depth))
    return depth.float()


def render_rays(geo: Geometry, bda: Tensor, rays_per_view: int, generator: torch.Generator,
                ignore_classes: tuple[int, ...] = ()) -> LidarRays:
    """LiDAR-like rays of the 7 render frames through random pixels of every camera.

    Returns:
        origins (T, N, 3), unit directions (R, 3), frame_cam (R, 2), z-depth (R,) float32 and
        labels (R,) int64, all in the key ego frame after ``bda`` (no pixels); rays of
        ``ignore_classes`` in non-current frames are dropped (``_2d``).
    """
    key_inv = torch.inverse(ego2global(0))
    bda64 = bda.double()
    dirs_cam = _pixel_rays(geo)
    origins = torch.zeros(len(RENDER_FRAME_IDS), geo.cams, 3, dtype=torch.float64)
    directions, idx, depths, labels = [], [], [], []
    for frame, offset in enumerate(RENDER_FRAME_IDS):
        for cam in range(geo.cams):
            cam2key = key_inv @ _cam2global(cam, offset)
            origins[frame, cam] = bda64 @ cam2key[:3, 3]
            pixels = torch.randperm(len(dirs_cam), generator=generator)
            pose = _cam2global(cam, offset)
            t, label = cast(pose[:3, 3], dirs_cam[pixels] @ pose[:3, :3].T, offset)
            keep = torch.isfinite(t) & (t >= 0.05) & (t < 39.0)
            if offset != 0 and ignore_classes:
                keep &= ~torch.isin(label, torch.tensor(ignore_classes))
            chosen = keep.nonzero()[:rays_per_view, 0]
            dirs = dirs_cam[pixels[chosen]] @ cam2key[:3, :3].T @ bda64.T
            directions.append(dirs / dirs.norm(dim=-1, keepdim=True))
            idx.append(torch.tensor([[frame, cam]]).expand(len(chosen), 2))
            depths.append(t[chosen])
            labels.append(label[chosen])
    return LidarRays(origins=origins.float(), directions=torch.cat(directions).float(),
                     frame_cam=torch.cat(idx).long(), depth=torch.cat(depths).float(),
                     labels=torch.cat(labels).long())


def _voxel_index(points: Tensor, geo: Geometry) -> Tensor:
    """(P, 3) key-ego metres -> (P, 3) int64 (x, y, z) voxel indices (may be out of range)."""
    lower = torch.tensor(geo.pc_range[:3], dtype=torch.float64)
    size = (torch.tensor(geo.pc_range[3:], dtype=torch.float64) - lower) / torch.tensor(
        geo.grid_size, dtype=torch.float64)
    return torch.floor((points - lower) / size).long()


def voxel_centres(geo: Geometry) -> Tensor:
    """(X, Y, Z, 3) float64 voxel centres in the key ego frame."""
    lower = torch.tensor(geo.pc_range[:3], dtype=torch.float64)
    size = (torch.tensor(geo.pc_range[3:], dtype=torch.float64) - lower) / torch.tensor(
        geo.grid_size, dtype=torch.float64)
    axes = [lower[i] + size[i] * (torch.arange(geo.grid_size[i]) + 0.5) for i in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1)


def voxel_semantics(geo: Geometry) -> Tensor:
    """(X, Y, Z) uint8 Occ3D-like labels of the key frame (17 = free), before BDA."""
    centres = voxel_centres(geo)
    size_z = (geo.pc_range[5] - geo.pc_range[2]) / geo.grid_size[2]
    labels = torch.full(geo.grid_size, FREE, dtype=torch.uint8)
    ground = (centres[..., 2] - size_z / 2 <= 0.0) & (centres[..., 2] + size_z / 2 > 0.0)
    labels[ground] = GROUND
    radius = centres[..., :2].norm(dim=-1)
    labels[(radius >= WALL_RADIUS) & (radius < WALL_RADIUS + 2.5)
           & (centres[..., 2] > 0.0) & (centres[..., 2] < WALL_HEIGHT)] = WALL
    car = ((centres - torch.tensor(CAR_CENTRE, dtype=torch.float64)).abs()
           <= torch.tensor(CAR_HALF, dtype=torch.float64)).all(dim=-1)
    labels[car] = CAR
    return labels


def voxel_flow(geo: Geometry) -> Tensor:
    """(F, 11) uint8 flow rows of the car voxels into every other render frame.

    Columns: source (z, y, x) | target (z, y, x) clamped to the grid | floor (z, y, x) | class |
    render-frame index; indices in the un-augmented grid.
    """
    centres = voxel_centres(geo)
    car = ((centres - torch.tensor(CAR_CENTRE, dtype=torch.float64)).abs()
           <= torch.tensor(CAR_HALF, dtype=torch.float64)).all(dim=-1)
    src_xyz = car.nonzero()  # (V, 3) (x, y, z)
    upper = torch.tensor(geo.grid_size) - 1
    rows = []
    for frame, offset in enumerate(RENDER_FRAME_IDS):
        if offset == 0:
            continue
        moved = centres[tuple(src_xyz.T)] + torch.tensor([CAR_STEP * offset, 0.0, 0.0],
                                                         dtype=torch.float64)
        tgt_xyz = torch.minimum(_voxel_index(moved, geo).clamp(min=0), upper)
        meta = torch.tensor([[CAR, frame]]).expand(len(src_xyz), 2)
        # (x, y, z) -> (z, y, x); the floor corner is the target voxel itself
        rows.append(torch.cat([src_xyz.flip(-1), tgt_xyz.flip(-1), tgt_xyz.flip(-1), meta], -1))
    return torch.cat(rows).to(torch.uint8)


def make_bda(flip_x: bool, flip_y: bool = False) -> Tensor:
    """(3, 3) BEV augmentation diag(+-1, +-1, 1)."""
    return torch.diag(torch.tensor([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, 1.0]))


def make_batch(batch_size: int = 2,
               geo: Geometry = Geometry(),
               rays_per_view: int = 24,
               flips: tuple[bool, ...] = (False, True),
               ignore_classes: tuple[int, ...] = (),
               with_gt_occ: bool = False,
               seed: int = 0) -> dict:
    """A batch as ``OccDataPreprocessor`` produces it: ``model(**batch, mode='loss')``.

    Sample b uses the BEV flip ``flips[b % len(flips)]`` along x, applied to all its ground
    truth (rays, labels and flow rows) as ``LoadAnnotationsBEVDepth`` does.

    Returns:
        dict with ``inputs`` (``img_inputs``: :class:`CameraInputs`, batch dim first) and
        ``data_samples``: B :class:`OccDataSample` with ``gt_depth`` (N, H, W), ``gt_rays``
        (:class:`LidarRays`), ``gt_flow`` (F_b, 11) uint8 and, with ``with_gt_occ``,
        ``gt_occ`` (``semantics`` (X, Y, Z) uint8 array).
    """
    generator = torch.Generator().manual_seed(seed)
    cameras, data_samples = [], []
    for b in range(batch_size):
        flip = flips[b % len(flips)]
        bda = make_bda(flip)
        sample = OccDataSample(metainfo=dict(sample_idx=f'synthetic-{b}'))
        sample.gt_rays = render_rays(geo, bda, rays_per_view, generator, ignore_classes)
        labels = voxel_semantics(geo)
        sample.gt_depth = gt_depth(geo)
        sample.gt_flow = torch.from_numpy(
            flip_flow_rows(voxel_flow(geo).numpy(), flip, False, geo.grid_size))
        if with_gt_occ:
            sample.gt_occ = dict(semantics=(labels.flip(0) if flip else labels).numpy())
        cameras.append(camera_inputs(geo, bda))
        data_samples.append(sample)
    return dict(inputs=dict(img_inputs=CameraInputs.stack(cameras)), data_samples=data_samples)


def take_sample(batch: dict, index: int) -> dict:
    """Batch of one holding sample ``index`` of a batch made by :func:`make_batch`."""
    cameras = batch['inputs']['img_inputs']
    return dict(inputs=dict(img_inputs=CameraInputs.stack([cameras.unstack()[index]])),
                data_samples=[batch['data_samples'][index]])


def to_collated(batch: dict, with_gt: bool = True) -> dict:
    """The pseudo-collated loader output that ``OccDataPreprocessor`` turns into ``batch``.

    Args:
        batch: a batch of :func:`make_batch`.
        with_gt: keep the data samples' ground truth; False: metainfo only (as a test
            pipeline). Defaults to True.

    Returns:
        ``{'inputs': {'img_inputs': B CameraInputs}, 'data_samples': B OccDataSample}``.
    """
    samples = batch['data_samples']
    if not with_gt:
        samples = [OccDataSample(metainfo=sample.metainfo) for sample in samples]
    return {'inputs': {'img_inputs': batch['inputs']['img_inputs'].unstack()},
            'data_samples': list(samples)}


def with_gt(batch: dict, **fields: list) -> dict:
    """A copy of ``batch`` whose data samples' ground truth is changed.

    Args:
        batch: a batch of :func:`make_batch`.
        fields: ground-truth field name -> B values (``gt_occ``: dicts), one per sample; a
            value None removes the field.
    """
    samples = []
    for b, sample in enumerate(batch['data_samples']):
        sample = sample.clone()
        for name, values in fields.items():
            if values[b] is None:
                if name in sample:
                    delattr(sample, name)
            else:
                setattr(sample, name, values[b])
        samples.append(sample)
    return dict(inputs=batch['inputs'], data_samples=samples)
