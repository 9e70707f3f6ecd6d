"""Sensor rig of the demo ego vehicle: 6 pinhole cameras and a 32-beam LiDAR (nuScenes-like).

Frames: ego = vehicle body (x forward, y left, z up, origin on the rear axle); camera = x right,
y down, z forward; LiDAR = x right of the vehicle, y forward, z up (nuScenes' yaw of -90 deg).
Rotations are (w, x, y, z) quaternions of the sensor->ego transform; translations in metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyquaternion import Quaternion

#: Camera channels in the order the BEVDet/OccFlowNet converters iterate them.
CAMERA_CHANNELS: tuple[str, ...] = (
    'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
    'CAM_BACK_RIGHT',
)
LIDAR_CHANNEL = 'LIDAR_TOP'

#: Size of a real nuScenes image; intrinsics below are given for it and scaled to the demo size.
FULL_SIZE = (1600, 900)

# channel: (translation xyz m, yaw deg, focal px at 1600x900, principal point px at 1600x900)
_CAMERA_LAYOUT: dict[str, tuple[tuple[float, float, float], float, float, tuple[float, float]]] = {
    'CAM_FRONT': ((1.70, 0.016, 1.51), 0.0, 1266.4, (816.3, 491.5)),
    'CAM_FRONT_RIGHT': ((1.55, -0.49, 1.50), -55.0, 1260.8, (807.9, 495.3)),
    'CAM_FRONT_LEFT': ((1.52, 0.49, 1.51), 55.0, 1272.6, (826.6, 479.8)),
    'CAM_BACK': ((0.03, 0.0, 1.57), 180.0, 809.2, (829.2, 481.8)),
    'CAM_BACK_LEFT': ((1.04, 0.48, 1.56), 110.0, 1256.7, (817.8, 451.9)),
    'CAM_BACK_RIGHT': ((1.03, -0.48, 1.57), -110.0, 1259.5, (807.3, 501.2)),
}

LIDAR_TRANSLATION = (0.94, 0.0, 1.84)
LIDAR_YAW_DEG = -90.0
#: HDL-32E-like beam elevations (deg), lowest beam = ring 0.
LIDAR_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)
LIDAR_MAX_RANGE = 70.0
LIDAR_MIN_RANGE = 1.0


@dataclass(frozen=True)
class SensorCalib:
    """A sensor's extrinsic (sensor->ego) and, for cameras, its 3x3 intrinsic in pixels."""

    channel: str
    modality: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    intrinsic: np.ndarray | None = None
    width: int = 0
    height: int = 0

    def sensor2ego(self) -> np.ndarray:
        """(4, 4) float64 homogeneous sensor->ego transform."""
        mat = np.eye(4)
        mat[:3, :3] = Quaternion(self.rotation).rotation_matrix
        mat[:3, 3] = self.translation
        return mat


def _quat(mat: np.ndarray) -> tuple[float, float, float, float]:
    q = Quaternion(matrix=mat, atol=1e-9)
    if q.w < 0:
        q = -q
    return tuple(float(v) for v in q.elements)


def camera_rotation(yaw_deg: float) -> np.ndarray:
    """(3, 3) camera->ego rotation of a level camera looking along ``yaw_deg`` (ccw from x)."""
    yaw = np.deg2rad(yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    return np.stack([right, down, forward], axis=1)


def camera_calibs(image_size: tuple[int, int]) -> list[SensorCalib]:
    """The 6 cameras for images of ``image_size`` = (W, H); intrinsics scaled from 1600x900."""
    width, height = image_size
    sx, sy = width / FULL_SIZE[0], height / FULL_SIZE[1]
    calibs = []
    for channel in CAMERA_CHANNELS:
        trans, yaw, focal, (cx, cy) = _CAMERA_LAYOUT[channel]
        k = np.array([[focal * sx, 0.0, cx * sx], [0.0, focal * sy, cy * sy], [0.0, 0.0, 1.0]])
        calibs.append(SensorCalib(channel, 'camera', trans, _quat(camera_rotation(yaw)), k,
                                  width, height))
    return calibs


def lidar_calib() -> SensorCalib:
    """The LIDAR_TOP extrinsic (yaw -90 deg: the LiDAR x axis points to the ego's right)."""
    yaw = np.deg2rad(LIDAR_YAW_DEG)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0],
                    [0.0, 0.0, 1.0]])
    return SensorCalib(LIDAR_CHANNEL, 'lidar', LIDAR_TRANSLATION, _quat(rot))


def lidar_directions(azimuth_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit beam directions of one revolution in the LiDAR frame.

    Returns:
        dirs (32 * azimuth_steps, 3) float64 and ring (32 * azimuth_steps,) int64, azimuth-major.
    """
    az = np.arange(azimuth_steps) * (2 * np.pi / azimuth_steps)
    el = np.deg2rad(LIDAR_ELEVATIONS_DEG)
    az_g, el_g = np.meshgrid(az, el, indexing='ij')
    dirs = np.stack([np.cos(el_g) * np.cos(az_g), np.cos(el_g) * np.sin(az_g), np.sin(el_g)], -1)
    ring = np.broadcast_to(np.arange(len(el)), az_g.shape)
    return dirs.reshape(-1, 3), ring.reshape(-1).astype(np.int64)
