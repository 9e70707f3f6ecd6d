"""GenerateRays on the tiny world, checked against geometry computed here from the poses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms import ray_generation
from mmdet3d.datasets.transforms.bev_aug import LoadAnnotationsBEVDepth
from mmdet3d.datasets.transforms.points import LoadPointsFromFile
from mmdet3d.datasets.transforms.ray_generation import GenerateRays
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.testing.geometry import occ3d_geometry

# spec 4.3.5 table: nuScenes lidarseg index -> Occ3D class
OCC_OF_LIDARSEG = {0: 0, 1: 0, 2: 7, 3: 7, 4: 7, 5: 7, 6: 7, 7: 0, 8: 0, 9: 1, 10: 0, 11: 0,
                   12: 8, 13: 0, 14: 2, 15: 3, 16: 3, 17: 4, 18: 5, 19: 0, 20: 0, 21: 6, 22: 9,
                   23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 29: 0, 30: 16, 31: 0}
FIX = dict(half_pixel_shift=False, depth_along_ray=True)


def _results(world, frames: list[dict]) -> dict:
    n = len(world.cams)
    img_inputs = CameraInputs(
        imgs=torch.zeros(1, 1, 1, 1).expand(n * 3, 3, 64, 176),
        sensor2egos=torch.zeros(n * 3, 4, 4), ego2globals=torch.zeros(n * 3, 4, 4),  # unused
        intrins=torch.from_numpy(np.stack([world.K] * n * 3)).float(),
        post_rots=torch.from_numpy(np.stack([np.diag([0.88, 0.88, 1.0])] * n * 3)).float(),
        post_trans=torch.tensor([[0.0, -34.0, 0.0]] * n * 3))
    return dict(render_frames=frames, img_inputs=img_inputs, cam_names=world.cams)


def _reference(world, frames: list[dict], key: int):
    """Per frame: points and Occ3D labels in the key LiDAR ego frame; camera -> key ego (N)."""
    key_inv = np.linalg.inv(world.pose(frames[key]['ego2global_translation'],
                                       frames[key]['ego2global_rotation']))
    out = []
    for info in frames:
        pts = np.fromfile(info['lidar_path'], np.float32).reshape(-1, 5)[:, :3]
        lidar2key = key_inv @ world.pose(info['ego2global_translation'],
                                         info['ego2global_rotation']) @ world.pose(
            info['lidar2ego_translation'], info['lidar2ego_rotation'])
        labels = np.array([OCC_OF_LIDARSEG[c] for c in np.load(info['panoptic_path'])['data']
                           // 1000])
        cam2key = np.stack([key_inv @ world.pose(c['ego2global_translation'],
                                                 c['ego2global_rotation'])
                            @ world.pose(c['sensor2ego_translation'], c['sensor2ego_rotation'])
                            for c in (info['cams'][cam] for cam in world.cams)])
        out.append((pts @ lidar2key[:3, :3].T + lidar2key[:3, 3], labels, cam2key))
    return out


def _match(out: dict, ref) -> tuple[np.ndarray, np.ndarray]:
    """Index of the LiDAR point each ray ends on and that endpoint's distance to it."""
    rays = out['gt_rays']
    idx, depth = rays.frame_cam.numpy(), rays.depth.numpy()
    ends = rays.origins.numpy()[idx[:, 0], idx[:, 1]] + depth[:, None] * rays.directions.numpy()
    point_idx, dist = np.zeros(len(idx), int), np.zeros(len(idx))
    for f, (pts, _, _) in enumerate(ref):
        m = idx[:, 0] == f
        d = np.linalg.norm(ends[m, None] - pts[None], axis=-1)
        point_idx[m], dist[m] = d.argmin(1), d.min(1)
    return point_idx, dist


@pytest.fixture
def frames(world) -> list[dict]:
    return world.frames(2, n_points=600)


def test_rays_end_on_their_points_with_fixes(world, frames) -> None:
    ref = _reference(world, frames, key=0)
    out = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1], **FIX))(_results(world, frames))
    rays = out['gt_rays']
    idx, depth, label = rays.frame_cam, rays.depth, rays.labels
    assert idx.dtype == label.dtype == rays.pixels.dtype == torch.int64
    assert depth.dtype == rays.directions.dtype == rays.origins.dtype == torch.float32
    assert rays.origins.shape == (2, 2, 3) and len(idx) > 100
    assert set(idx[:, 0].tolist()) == {0, 1} and set(idx[:, 1].tolist()) == {0, 1}
    order = idx[:, 0] * 2 + idx[:, 1]  # frame-major, then camera-major
    assert torch.all(order[1:] >= order[:-1])
    np.testing.assert_allclose(out['gt_rays'].directions.norm(dim=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out['gt_rays'].origins.numpy(),
                               np.stack([r[2][:, :3, 3] for r in ref]), atol=1e-4)
    point_idx, dist = _match(out, ref)
    assert dist.max() < 2e-4  # unshifted ray, range depth: lands exactly on its point
    labels = np.concatenate([ref[f][1][point_idx[idx[:, 0] == f]] for f in range(2)])
    np.testing.assert_array_equal(label.numpy(), labels)  # 32 -> 17 map


def test_default_depth_is_z_and_half_pixel_shift(world, frames) -> None:
    ref = _reference(world, frames, key=0)
    results = _results(world, frames)
    fixed = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1], **FIX))(dict(results))
    orig = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(dict(results))
    idx = orig['gt_rays'].frame_cam.numpy()
    assert np.array_equal(idx, fixed['gt_rays'].frame_cam.numpy())  # flags keep the same rays
    point_idx, _ = _match(fixed, ref)
    cam2key = np.stack([ref[f][2][c] for f, c in idx])
    pts = np.stack([ref[f][0][p] for (f, _), p in zip(idx, point_idx)])
    z_depth = np.einsum('ri,ri->r', pts - cam2key[:, :3, 3], cam2key[:, :3, 2])
    np.testing.assert_allclose(orig['gt_rays'].depth.numpy(), z_depth, atol=2e-4)
    # in the camera frame the default ray passes through (u + 0.5, v + 0.5)
    d_orig = np.einsum('rji,rj->ri', cam2key[:, :3, :3], orig['gt_rays'].directions.numpy())
    d_fix = np.einsum('rji,rj->ri', cam2key[:, :3, :3], fixed['gt_rays'].directions.numpy())
    shift = d_orig[:, :2] / d_orig[:, 2:] - d_fix[:, :2] / d_fix[:, 2:]
    np.testing.assert_allclose(shift, 0.5 / 100.0, atol=2e-6)


def test_dynamic_rays_dropped_for_other_frames(world, frames) -> None:
    results = _results(world, frames)
    full = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(dict(results))
    filt = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]), ignore_classes=[4, 7])(
        dict(results))
    for out in (full, filt):
        out['f'], out['lab'] = out['gt_rays'].frame_cam[:, 0].numpy(), out['gt_rays'].labels.numpy()
    dyn = np.isin(full['lab'], [4, 7])
    assert dyn[full['f'] == 1].any() and dyn[full['f'] == 0].any()
    keep = (full['f'] == 0) | ~dyn
    np.testing.assert_array_equal(filt['lab'], full['lab'][keep])
    np.testing.assert_array_equal(filt['gt_rays'].directions.numpy(),
                                  full['gt_rays'].directions.numpy()[keep])


def test_pc_range_is_strict_and_in_key_frame(world, frames) -> None:
    ref = _reference(world, frames, key=1)
    rays = GenerateRays(occ3d_geometry(pc_range=(-8, -8, -1, 8, 8, 5.4), render_frame_ids=[-1, 0],
                                       **FIX))
    out = rays(_results(world, frames))
    point_idx, dist = _match(out, ref)
    assert dist.max() < 2e-4
    idx = out['gt_rays'].frame_cam.numpy()
    pts = np.stack([ref[f][0][p] for (f, _), p in zip(idx, point_idx)])
    assert np.all(np.abs(pts[:, :2]) < 8)
    wide = GenerateRays(occ3d_geometry(render_frame_ids=[-1, 0], **FIX))(_results(world, frames))
    assert len(wide['gt_rays'].directions) > len(out['gt_rays'].directions)


def test_bda_applied_to_origins_and_directions(world, frames) -> None:
    """GenerateRays gives the rays before the BEV augmentation; LoadAnnotationsBEVDepth applies
    it to their origins and directions and keeps everything else."""
    plain = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(_results(world, frames))
    results = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(_results(world, frames))
    conf = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=1.0, flip_dy_ratio=0.0)
    flipped = LoadAnnotationsBEVDepth(conf, is_train=True, seed=0)(results)
    flip = np.diag([-1.0, 1.0, 1.0])
    for key in ('origins', 'directions'):
        np.testing.assert_array_equal(getattr(flipped['gt_rays'], key).numpy(),
                                      getattr(plain['gt_rays'], key).numpy() @ flip)
    for key in ('frame_cam', 'depth', 'labels', 'pixels'):
        assert torch.equal(getattr(flipped['gt_rays'], key), getattr(plain['gt_rays'], key))


def test_key_sweep_read_once(world, frames, monkeypatch) -> None:
    """With the key sweep loaded by LoadPointsFromFile, GenerateRays reads only the other
    frames' files; the rays are the same."""
    geometry = occ3d_geometry(render_frame_ids=[0, 1])
    expected = GenerateRays(geometry)(_results(world, frames))['gt_rays']
    results = LoadPointsFromFile()(dict(_results(world, frames),
                                        pts_filename=frames[0]['lidar_path']))
    read = []
    original = ray_generation.load_lidar_points
    monkeypatch.setattr(ray_generation, 'load_lidar_points',
                        lambda path, *args: read.append(path) or original(path, *args))
    got = GenerateRays(geometry)(results)['gt_rays']
    assert read == [frames[1]['lidar_path']]
    for key in ('origins', 'directions', 'frame_cam', 'depth', 'labels', 'pixels'):
        assert torch.equal(getattr(got, key), getattr(expected, key)), key


def test_copied_frames(world, frames) -> None:
    copies = [frames[0], frames[0]]
    dup = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(_results(world, copies))
    f = dup['gt_rays'].frame_cam[:, 0]
    assert (f == 0).sum() == (f == 1).sum() > 0  # quirk 8: the copy's rays are duplicated
    skip = GenerateRays(occ3d_geometry(render_frame_ids=[0, 1], skip_copied_frames=True))(
        _results(world, copies))
    assert torch.all(skip['gt_rays'].frame_cam[:, 0] == 0) and (f == 0).sum() == len(
        skip['gt_rays'].directions)
    assert skip['gt_rays'].origins.shape == (2, 2, 3)


def test_missing_panoptic_file_names_it(world, frames) -> None:
    frames[1]['panoptic_path'] = str(world.root / 'gone_panoptic.npz')
    with pytest.raises(FileNotFoundError, match='gone_panoptic.npz'):
        GenerateRays(occ3d_geometry(render_frame_ids=[0, 1]))(_results(world, frames))
    with pytest.raises(ValueError, match='render_frame_ids'):
        GenerateRays(occ3d_geometry(render_frame_ids=[0, 1, 2]))(_results(world, frames))
