"""Hand-built samples for the visualisation tests: six cameras around a moving ego vehicle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyquaternion import Quaternion

from mmdet3d.visualization.camera_overlay import CAMERA_NAMES

#: Yaw (degrees, counter-clockwise from +x) of each camera's optical axis.
CAMERA_YAWS = {'CAM_FRONT': 0.0, 'CAM_FRONT_LEFT': 55.0, 'CAM_FRONT_RIGHT': -55.0,
               'CAM_BACK': 180.0, 'CAM_BACK_LEFT': 110.0, 'CAM_BACK_RIGHT': -110.0}
IMAGE_SIZE = (96, 54)  # (width, height) of the raw images


def yaw_quaternion(yaw_deg: float) -> list[float]:
    """(w, x, y, z) of a rotation about +z."""
    return list(Quaternion(axis=[0, 0, 1], degrees=yaw_deg).elements)


def camera_to_ego_quaternion(yaw_deg: float, pitch_deg: float = 0.0) -> list[float]:
    """(w, x, y, z) of a camera (x right, y down, z forward) looking along ``yaw``, tilted down
    by ``pitch``."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch),
                        -np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    return list(Quaternion(matrix=np.stack([right, down, forward], axis=1)).elements)


def make_info(folder: Path, token: str = 'tok0', scene: str = 'scene-0001',
              timestamp: int = 0, ego_x: float = 100.0) -> dict:
    """Info of one sample whose cameras have their own ego poses (the vehicle moved 0.5 m and
    turned 1 degree between the LiDAR and the camera timestamps), with grey images on disk."""
    key_translation, key_yaw = [ego_x, 50.0, 0.3], 30.0
    cam_yaw = np.radians(key_yaw)
    cam_translation = [key_translation[0] + 0.5 * np.cos(cam_yaw),
                       key_translation[1] + 0.5 * np.sin(cam_yaw), 0.3]
    width, height = IMAGE_SIZE
    cams = {}
    for k, cam in enumerate(CAMERA_NAMES):
        yaw = CAMERA_YAWS[cam]
        path = folder / 'samples' / cam / f'{token}.jpg'
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((height, width, 3), 90 + 20 * k, np.uint8)).save(path)
        cams[cam] = dict(
            data_path=str(path),
            sensor2ego_translation=[1.5 * np.cos(np.radians(yaw)),
                                    1.5 * np.sin(np.radians(yaw)), 1.6],
            sensor2ego_rotation=camera_to_ego_quaternion(yaw, pitch_deg=4.0),
            ego2global_translation=cam_translation,
            ego2global_rotation=yaw_quaternion(key_yaw + 1.0),
            cam_intrinsic=np.array([[40.0, 0, 48.3], [0, 41.0, 27.1], [0, 0, 1]]))
    return dict(token=token, scene_name=scene, timestamp=timestamp, cams=cams,
                ego2global_translation=key_translation, ego2global_rotation=yaw_quaternion(key_yaw),
                lidar2ego_translation=[0.9, 0.0, 1.8], lidar2ego_rotation=yaw_quaternion(90.0),
                occ_path=str(folder / 'gts' / scene / token))


@pytest.fixture
def hand_info(tmp_path) -> dict:
    """One sample info (see :func:`make_info`) with its images under ``tmp_path``."""
    return make_info(tmp_path)


@pytest.fixture
def info_factory(tmp_path):
    """``info_factory(token, scene, timestamp)``: more infos under ``tmp_path``."""
    def factory(token: str, scene: str = 'scene-0001', timestamp: int = 0) -> dict:
        return make_info(tmp_path, token, scene, timestamp)
    return factory
