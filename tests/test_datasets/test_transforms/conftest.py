"""A tiny hand-built world for the transform tests: 2 cameras, small images, a few frames.

Frame f: ego pose translation (100 + 5f, 200 + f, 0) m, yaw 30 + 2f deg; LiDAR 0.9 m ahead,
1.8 m up, yaw -90 deg; CAM_FRONT looks along ego +x, CAM_BACK along -x; the cameras' ego pose
is 0.1 m ahead of the LiDAR's (different timestamps). Images 200 x 112, K = [[100, 0, 100],
[0, 100, 56]]. Points are random in the ego frame (stored in the LiDAR frame) with random
panoptic labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyquaternion import Quaternion

CAMS = ['CAM_FRONT', 'CAM_BACK']
IMG_W, IMG_H = 200, 112
K = np.array([[100.0, 0.0, 100.0], [0.0, 100.0, 56.0], [0.0, 0.0, 1.0]])
DATA_CONFIG = dict(cams=CAMS, Ncams=2, input_size=(64, 176), src_size=(IMG_H, IMG_W),
                   resize=(-0.06, 0.11), rot=(-5.4, 5.4), flip=True, crop_h=(0.0, 0.0),
                   resize_test=0.0)
# camera -> ego rotations: camera z forward, x right, y down
CAM_ROT = {
    'CAM_FRONT': np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    'CAM_BACK': np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}
CAM_T = {'CAM_FRONT': [1.5, 0.0, 1.5], 'CAM_BACK': [-1.0, 0.0, 1.5]}


def quat(rot: np.ndarray) -> list[float]:
    return list(Quaternion(matrix=rot).elements)


def yaw_quat(deg: float) -> list[float]:
    return list(Quaternion(axis=[0, 0, 1], degrees=deg).elements)


def pose(t, q) -> np.ndarray:
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(q).rotation_matrix
    mat[:3, 3] = t
    return mat


def frame_info(root: Path, f: int, n_points: int, rng: np.random.Generator,
               image_fn=None) -> dict:
    """Info dict of frame f with its LiDAR, panoptic and image files under ``root``."""
    ego_t, ego_q = [100.0 + 5 * f, 200.0 + f, 0.0], yaw_quat(30.0 + 2 * f)
    lidar_t, lidar_q = [0.9, 0.0, 1.8], yaw_quat(-90.0)
    cam_ego_t = list(np.array(ego_t) + pose(ego_t, ego_q)[:3, :3] @ [0.1, 0.0, 0.0])
    pts_ego = np.stack([rng.uniform(-20, 20, n_points), rng.uniform(-20, 20, n_points),
                        rng.uniform(-0.5, 3.0, n_points)], axis=1)
    ego2lidar = np.linalg.inv(pose(lidar_t, lidar_q))
    pts = np.concatenate([pts_ego @ ego2lidar[:3, :3].T + ego2lidar[:3, 3],
                          rng.uniform(0, 255, (n_points, 1)), rng.integers(0, 32, (n_points, 1))],
                         axis=1).astype(np.float32)
    lidar_path = root / f'lidar_{f}.pcd.bin'
    pts.tofile(lidar_path)
    panoptic = (rng.integers(0, 32, n_points) * 1000 + rng.integers(0, 5, n_points))
    panoptic_path = root / f'lidar_{f}_panoptic.npz'
    np.savez_compressed(panoptic_path, data=panoptic.astype(np.uint16))
    cams = {}
    for c, cam in enumerate(CAMS):
        path = root / f'{cam}_{f}.png'
        img = image_fn(c, f) if image_fn else rng.integers(0, 255, (IMG_H, IMG_W, 3))
        Image.fromarray(img.astype(np.uint8)).save(path)
        cams[cam] = dict(data_path=str(path), sensor2ego_translation=CAM_T[cam],
                         sensor2ego_rotation=quat(CAM_ROT[cam]),
                         ego2global_translation=cam_ego_t, ego2global_rotation=ego_q,
                         cam_intrinsic=K.copy())
    return dict(token=f'sample{f}', lidar_path=str(lidar_path), panoptic_path=str(panoptic_path),
                lidar2ego_translation=lidar_t, lidar2ego_rotation=lidar_q,
                ego2global_translation=ego_t, ego2global_rotation=ego_q, cams=cams,
                scene_name='scene-0001')


class World:
    """Constants and helpers of the tiny world, handed to the tests by the ``world`` fixture."""

    cams = CAMS
    data_config = DATA_CONFIG
    K = K
    cam_rot = CAM_ROT
    cam_t = CAM_T
    pose = staticmethod(pose)

    def __init__(self, root: Path) -> None:
        self.root = root

    def frames(self, n_frames: int, n_points: int = 400, image_fn=None) -> list[dict]:
        """Infos of frames 0..n_frames-1 (files written under the test's tmp_path)."""
        rng = np.random.default_rng(7)
        return [frame_info(self.root, f, n_points, rng, image_fn) for f in range(n_frames)]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)
