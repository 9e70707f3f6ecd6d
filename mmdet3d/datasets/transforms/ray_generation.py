"""``GenerateRays``: LiDAR-supervised camera rays of the render frames (spec 4.3.5)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ3d import LIDARSEG_TO_OCC3D
from mmdet3d.structures.occ_geometry import OccGeometry
from mmdet3d.structures.pose import pose_matrix

from .base import BaseTransform
from .point_depth import lidar2img_matrices, project_points
from .points import load_lidar_points
from .utils import cam2global_matrices, check_file, require, sensor_poses


def load_panoptic_labels(path: str) -> np.ndarray:
    """(P,) int64 Occ3D class of each point of a ``*_panoptic.npz`` (``data`` = cat*1000+inst)."""
    with np.load(check_file(path, 'panoptic label file')) as npz:
        if 'data' not in npz:
            raise KeyError(f'{path} lacks the array "data"')
        return LIDARSEG_TO_OCC3D[npz['data'].astype(np.int64) // 1000]


@TRANSFORMS.register_module()
class GenerateRays(BaseTransform):
    """Build one ray per (render frame, camera, visible LiDAR point), in the key LiDAR-ego frame.

    For render frame i (offset t_i keyframes) the frame's LiDAR points are moved into the key
    frame's LiDAR-timestamp ego frame (E0), kept if strictly inside the label grid's range
    (``pc_range``; its boundary excluded, unlike ``VoxelGrid.contains``), projected
    into all cameras of frame i, augmented with the key frame's post_rot/post_tran and kept if
    inside the image with z in ``depth_range``. Rays come frame-major, then camera-major, then
    in point order; directions use the key frame's intrinsics, camera rotations are frame i's
    expressed in E0. The BEV augmentation is not applied here: ``LoadAnnotationsBEVDepth``
    applies it to the rays with the rest of the ground truth. The key frame's LiDAR sweep is
    taken from ``points`` (``LoadPointsFromFile``) when that loaded the same file: read once.

    Geometry is computed in float64. The original works in float32 through global coordinates
    (~km), which shifts its cameras by ~1e-4 m: its directions differ from exact ones by up to
    ~1e-4 m / depth and a few floor(pixel) values flip; kept rays, order and labels are equal.

    Required Keys:
        - render_frames (list[dict]): T infos (the geometry's ``render_frame_ids``) with
          ``lidar_path``, ``panoptic_path``, ``lidar2ego_*``, ``ego2global_*``, ``cams``.
        - img_inputs (:class:`CameraInputs`): the image size and the key frame's (first N)
          intrins, post_rots and post_trans.
        - cam_names (list[str]): the N cameras.
        - points, pts_filename (optional): the key frame's sweep, used instead of reading
          ``lidar_path`` again when ``pts_filename`` is the key frame's ``lidar_path``.

    Added Keys:
        - gt_rays (:class:`LidarRays`): origins (T, N, 3) float32 camera centres (m);
          directions (R, 3) float32 unit; frame_cam (R, 2) int64 (frame, camera); depth (R,)
          float32 (m); labels (R,) int64 Occ3D class 0..16; pixels (R, 2) int64 floor of the
          augmented pixel (u', v'). In the key ego frame before the BEV augmentation.

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict). Used:
            ``render_frame_ids`` (the offsets of ``render_frames``), the label grid's
            ``pc_range`` and the conventions ``half_pixel_shift`` (quirk 2: directions through
            (u + 0.5, v + 0.5) instead of the projected point (u, v)), ``depth_along_ray``
            (quirk 1 fix: depth = distance along the ray, z * ||d_cam|| with
            d_cam = ((u - cx) / fx, (v - cy) / fy, 1) shifted like the directions, instead of
            the camera z-depth) and ``skip_copied_frames`` (quirk 8 fix: drop the rays of
            t != 0 frames that are the key frame itself, the dataset's scene-boundary
            fallback, matched by ``lidar_path``).
        depth_range: keep camera z-depths in [min, max) (m). Defaults to (0.05, 39.0).
        ignore_classes: classes whose rays are dropped for frames with t != 0 (the ``_2d``
            variant's dynamic-object filter). Defaults to None (keep all).
    """

    def __init__(self,
                 geometry: OccGeometry | Mapping[str, Any],
                 depth_range: Sequence[float] = (0.05, 39.0),
                 ignore_classes: Sequence[int] | None = None) -> None:
        self.geometry = OccGeometry.build(geometry)
        self.render_frame_ids = list(self.geometry.render_frame_ids)
        self.depth_range = (float(depth_range[0]), float(depth_range[1]))
        self.pc_range = np.asarray(self.geometry.label_grid.pc_range, dtype=np.float64)
        self.ignore_classes = np.asarray(
            [] if ignore_classes is None else list(ignore_classes), dtype=np.int64)
        self.half_pixel_shift = self.geometry.half_pixel_shift
        self.depth_along_ray = self.geometry.depth_along_ray
        self.skip_copied_frames = self.geometry.skip_copied_frames

    def _frame_rays(self, info: dict, cam2key: np.ndarray, key_ego_inv: np.ndarray,
                    cams: list[str], key_cam: tuple[np.ndarray, ...], img_hw: tuple[int, int],
                    dynamic_filter: bool, points: np.ndarray | None = None
                    ) -> tuple[np.ndarray, ...]:
        """Rays of one frame: camera idx (R,), dirs (R, 3), depth (R,), label (R,),
        pixels (R, 2). ``points``: the frame's sweep if already read, else it is read here."""
        intrins, post_rots, post_trans = key_cam
        if points is None:
            points = load_lidar_points(info['lidar_path'])
        points = points[:, :3]
        labels = load_panoptic_labels(info['panoptic_path'])
        if len(labels) != len(points):
            raise ValueError(f'{info["panoptic_path"]}: {len(labels)} labels for '
                             f'{len(points)} points of {info["lidar_path"]}')
        points = points.astype(np.float64)
        lidar2ego, ego2global = sensor_poses(info, 'lidar')
        lidar2key = key_ego_inv @ ego2global @ lidar2ego
        in_key = points @ lidar2key[:3, :3].T + lidar2key[:3, 3]
        inside = np.all((in_key > self.pc_range[:3]) & (in_key < self.pc_range[3:]), axis=1)
        points, labels = points[inside], labels[inside]

        uvz_pre, uvz = project_points(points, lidar2img_matrices(info, cams), post_rots,
                                      post_trans)  # (N, P, 3) each
        height, width = img_hw
        keep = ((uvz[..., 0] >= 0) & (uvz[..., 0] < width) & (uvz[..., 1] >= 0)
                & (uvz[..., 1] < height) & (uvz[..., 2] >= self.depth_range[0])
                & (uvz[..., 2] < self.depth_range[1]))
        if dynamic_filter:
            keep &= ~np.isin(labels, self.ignore_classes)[None]
        cam_idx, pt_idx = np.nonzero(keep)  # camera-major, then point order
        shift = 0.5 if self.half_pixel_shift else 0.0
        k = intrins[cam_idx]
        d_cam = np.stack([(uvz_pre[cam_idx, pt_idx, 0] + shift - k[:, 0, 2]) / k[:, 0, 0],
                          (uvz_pre[cam_idx, pt_idx, 1] + shift - k[:, 1, 2]) / k[:, 1, 1],
                          np.ones(len(cam_idx))], axis=1)
        dirs = np.einsum('rij,rj->ri', cam2key[cam_idx, :3, :3], d_cam)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        depth = uvz_pre[cam_idx, pt_idx, 2]
        if self.depth_along_ray:
            depth = depth * np.linalg.norm(d_cam, axis=1)
        pixels = np.floor(uvz[cam_idx, pt_idx, :2]).astype(np.int64)
        return cam_idx, dirs, depth, labels[pt_idx], pixels

    def transform(self, results: dict) -> dict:
        frames = require(results, 'render_frames', 'GenerateRays')
        cameras = require(results, 'img_inputs', 'GenerateRays')
        cams = list(require(results, 'cam_names', 'GenerateRays'))
        if len(frames) != len(self.render_frame_ids):
            raise ValueError(f'GenerateRays: {len(frames)} render_frames for render_frame_ids '
                             f'{self.render_frame_ids}')
        n = len(cams)
        key_cam = tuple(np.asarray(matrices[:n], dtype=np.float64)
                        for matrices in (cameras.intrins, cameras.post_rots, cameras.post_trans))
        key_info = frames[self.render_frame_ids.index(0)]
        key_points = None
        if 'points' in results and results.get('pts_filename') == key_info['lidar_path']:
            key_points = np.asarray(results['points'])
            if key_points.ndim != 2 or key_points.shape[1] < 3:
                key_points = None
        key_ego_inv = np.linalg.inv(pose_matrix(key_info['ego2global_translation'],
                                                key_info['ego2global_rotation']))

        origins, idx, dirs, depth, label, pixels = [], [], [], [], [], []
        for i, (offset, info) in enumerate(zip(self.render_frame_ids, frames)):
            cam2key = key_ego_inv @ cam2global_matrices(info, cams)  # (N, 4, 4) camera -> E0
            origins.append(cam2key[:, :3, 3])
            if (self.skip_copied_frames and offset != 0
                    and info['lidar_path'] == key_info['lidar_path']):
                continue
            cam_idx, d, z, lab, pix = self._frame_rays(
                info, cam2key, key_ego_inv, cams, key_cam, cameras.image_size,
                dynamic_filter=offset != 0 and self.ignore_classes.size > 0,
                points=key_points if info['lidar_path'] == key_info['lidar_path'] else None)
            idx.append(np.stack([np.full_like(cam_idx, i), cam_idx], axis=1))
            dirs.append(d)
            depth.append(z)
            label.append(lab)
            pixels.append(pix)

        results['gt_rays'] = LidarRays(
            origins=torch.from_numpy(np.stack(origins).astype(np.float32)),
            directions=torch.from_numpy(np.concatenate(dirs).astype(np.float32)),
            frame_cam=torch.from_numpy(np.concatenate(idx).astype(np.int64)),
            depth=torch.from_numpy(np.concatenate(depth).astype(np.float32)),
            labels=torch.from_numpy(np.concatenate(label).astype(np.int64)),
            pixels=torch.from_numpy(np.concatenate(pixels)))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(render_frame_ids={self.render_frame_ids}, '
                f'depth_range={self.depth_range}, ignore_classes={self.ignore_classes.tolist()}, '
                f'half_pixel_shift={self.half_pixel_shift}, '
                f'depth_along_ray={self.depth_along_ray}, '
                f'skip_copied_frames={self.skip_copied_frames})')
