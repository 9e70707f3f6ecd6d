"""LoadPointsFromFile and PointToMultiViewDepth on hand-placed points."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.point_depth import PointToMultiViewDepth
from mmdet3d.datasets.transforms.points import LoadPointsFromFile
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.testing.geometry import occ3d_geometry

GEOMETRY = occ3d_geometry()  # depth bins [1, 45) m
POST_ROT, POST_TRAN = 0.5, np.array([-2.0, 3.0])


def _cam_point(u_aug: float, v_aug: float, z: float) -> list[float]:
    """CAM_FRONT-frame point that lands on augmented pixel (u', v') at depth z (K of the world)."""
    u, v = (u_aug - POST_TRAN[0]) / POST_ROT, (v_aug - POST_TRAN[1]) / POST_ROT
    return [(u - 100.0) * z / 100.0, (v - 56.0) * z / 100.0, z]


def _setup(world, cam_points: list[list[float]]) -> dict:
    info = world.frames(1, n_points=1)[0]
    cam = info['cams']['CAM_FRONT']
    cam2global = world.pose(cam['ego2global_translation'], cam['ego2global_rotation']) @ \
        world.pose(cam['sensor2ego_translation'], cam['sensor2ego_rotation'])
    lidar2global = world.pose(info['ego2global_translation'], info['ego2global_rotation']) @ \
        world.pose(info['lidar2ego_translation'], info['lidar2ego_rotation'])
    cam2lidar = np.linalg.inv(lidar2global) @ cam2global
    pts = np.asarray(cam_points) @ cam2lidar[:3, :3].T + cam2lidar[:3, 3]
    pts = np.concatenate([pts, np.ones((len(pts), 2))], 1).astype(np.float32)
    pts.tofile(world.root / 'pts.bin')
    img_inputs = CameraInputs(
        imgs=torch.zeros(1, 1, 1, 1).expand(2, 3, 64, 176),
        sensor2egos=torch.zeros(2, 4, 4), ego2globals=torch.zeros(2, 4, 4),  # unused
        intrins=torch.from_numpy(np.stack([world.K] * 2)).float(),
        post_rots=torch.from_numpy(np.stack([np.diag([POST_ROT, POST_ROT, 1.0])] * 2)).float(),
        post_trans=torch.tensor([[*POST_TRAN, 0.0]] * 2, dtype=torch.float32))
    results = dict(pts_filename=str(world.root / 'pts.bin'), curr=info, img_inputs=img_inputs,
                   cam_names=world.cams)
    return LoadPointsFromFile(coord_type='LIDAR', load_dim=5, use_dim=5)(results)


def test_min_depth_and_range_filter(world) -> None:
    cam_points = [
        _cam_point(40, 20, 5.0), _cam_point(40, 20, 3.0),  # same pixel: keep the nearer
        _cam_point(40.3, 19.8, 0.5),  # same pixel, below depth min 1.0
        _cam_point(100, 30, 44.9),  # just inside the max
        _cam_point(10, 10, 45.0),  # max is exclusive
        _cam_point(10, 50, 1.0),  # min is inclusive
        _cam_point(176.2, 30, 10.0),  # rounds to u' = 176 = W: outside
        [0.0, 0.0, -5.0],  # behind CAM_FRONT; 2.5 m in front of CAM_BACK, on its centre
    ]
    results = _setup(world, cam_points)
    assert results['points'].shape == (8, 5) and results['points'].dtype == np.float32
    depth = PointToMultiViewDepth(GEOMETRY)(results)['gt_depth']
    assert depth.shape == (2, 64, 176) and depth.dtype == torch.float32
    expected = np.zeros((2, 64, 176), np.float32)
    expected[0, 20, 40], expected[0, 30, 100], expected[0, 50, 10] = 3.0, 44.9, 1.0
    expected[1, round(56 * POST_ROT + 3), round(100 * POST_ROT - 2)] = 2.5
    np.testing.assert_allclose(depth.numpy(), expected, atol=1e-4)


def test_downsample(world) -> None:
    results = _setup(world, [_cam_point(40, 20, 5.0)])
    depth = PointToMultiViewDepth(GEOMETRY, downsample=2)(results)['gt_depth']
    assert depth.shape == (2, 32, 88)
    assert depth[0, 10, 20] == pytest.approx(5.0, abs=1e-4) and (depth > 0).sum() == 1


def test_missing_points_file_names_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match='missing.pcd.bin'):
        LoadPointsFromFile()(dict(pts_filename=str(tmp_path / 'missing.pcd.bin')))
