"""Spinning 32-beam LiDAR scans of the demo world.

A scan is instantaneous (no motion during the revolution) and noise free. Box hits are moved
1 cm into the box along the ray so that a point lies strictly inside its object.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import classes as C
from .raycast import cast_rays, cull_boxes
from .rigs import LIDAR_MAX_RANGE, LIDAR_MIN_RANGE, SensorCalib, lidar_directions
from .world import World

#: Depth (m) by which box hits are pushed inside the box.
INSIDE_NUDGE = 0.01
#: Base reflectivity (0..255) per lidarseg index used by the demo world.
_REFLECTIVITY = {
    C.DRIVEABLE: 18.0, C.OTHER_FLAT: 30.0, C.SIDEWALK: 40.0, C.TERRAIN: 14.0, C.MANMADE: 55.0,
    C.VEGETATION: 22.0, C.CAR: 70.0, C.TRUCK: 75.0, C.BUS: 80.0, C.PEDESTRIAN: 35.0,
    C.BICYCLE: 45.0, C.BARRIER: 120.0, C.TRAFFIC_CONE: 150.0,
}


@dataclass
class LidarScan:
    """One revolution.

    points: (N, 5) float32 x, y, z, intensity, ring in the LiDAR frame.
    label: (N,) uint8 lidarseg index; inst: (N,) int32 world instance id (0 = stuff).
    origin_world: (3,) sensor position; hits_world: (N, 3) float64 points in the world frame.
    """

    points: np.ndarray
    label: np.ndarray
    inst: np.ndarray
    origin_world: np.ndarray
    hits_world: np.ndarray


def scan(world: World, t: float, calib: SensorCalib, azimuth_steps: int) -> LidarScan:
    """Scan the world at scene time ``t`` (s) from the LiDAR mounted by ``calib``."""
    boxes, label, inst = world.boxes_at(t)
    world_from_lidar = world.ego_pose(t) @ calib.sensor2ego()
    origin = world_from_lidar[:3, 3].copy()
    dirs_l, ring = lidar_directions(azimuth_steps)
    dirs_w = dirs_l @ world_from_lidar[:3, :3].T
    keep = cull_boxes(origin, boxes, LIDAR_MAX_RANGE)
    t_hit, lab, ins, nrm = cast_rays(origin, np.ascontiguousarray(dirs_w), LIDAR_MAX_RANGE,
                                     boxes[keep], label[keep], inst[keep],
                                     *world.ground_params())
    valid = (lab >= 0) & (t_hit >= LIDAR_MIN_RANGE)
    is_box = (lab >= 0) & (nrm[:, 2] < 0.5) | (ins > 0) | (lab == C.MANMADE) | (lab == C.VEGETATION)
    depth = np.where(is_box, t_hit + INSIDE_NUDGE, t_hit)[valid]
    dirs_l, dirs_w, lab, ins = dirs_l[valid], dirs_w[valid], lab[valid], ins[valid]
    refl = np.zeros(len(C.LIDARSEG_NAMES))
    for idx, value in _REFLECTIVITY.items():
        refl[idx] = value
    cos_inc = np.abs(np.einsum('ij,ij->i', nrm[valid], dirs_w))
    intensity = np.clip(np.round(refl[lab] * (0.3 + 0.7 * cos_inc)), 0, 255)
    points = np.column_stack([dirs_l * depth[:, None], intensity, ring[valid]])
    return LidarScan(points.astype(np.float32), lab.astype(np.uint8), ins, origin,
                     origin + dirs_w * depth[:, None])
