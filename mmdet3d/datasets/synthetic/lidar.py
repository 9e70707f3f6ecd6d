"""Spinning 32-beam LiDAR scans of the demo world.

A scan is instantaneous (no motion during the revolution) and noise free. Box hits are clamped
into the box shrunk by ``INSIDE_MARGIN`` so that a point lies strictly inside its object.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmdet3d.structures.pose import rigid_inverse

from . import classes as C
from .raycast import cast_rays, cull_boxes
from .rigs import LIDAR_MAX_RANGE, LIDAR_MIN_RANGE, SensorCalib, lidar_directions
from .world import World

#: Distance (m) by which box hits are kept inside every face of their box.
INSIDE_MARGIN = 0.01
#: Base reflectivity (0..255) per lidarseg index (0 for classes the world does not use).
_REFLECTIVITY = np.zeros(len(C.LIDARSEG_NAMES))
for _idx, _value in {
        C.DRIVEABLE: 18.0, C.OTHER_FLAT: 30.0, C.SIDEWALK: 40.0, C.TERRAIN: 14.0, C.MANMADE: 55.0,
        C.VEGETATION: 22.0, C.CAR: 70.0, C.TRUCK: 75.0, C.BUS: 80.0, C.PEDESTRIAN: 35.0,
        C.BICYCLE: 45.0, C.BARRIER: 120.0, C.TRAFFIC_CONE: 150.0}.items():
    _REFLECTIVITY[_idx] = _value


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
    t_hit, lab, ins, nrm, box = cast_rays(origin, np.ascontiguousarray(dirs_w), LIDAR_MAX_RANGE,
                                          boxes[keep], label[keep], inst[keep],
                                          *world.ground_params())
    valid = (lab >= 0) & (t_hit >= LIDAR_MIN_RANGE)
    dirs_w, lab, ins, nrm, ring = dirs_w[valid], lab[valid], ins[valid], nrm[valid], ring[valid]
    hits = origin + dirs_w * t_hit[valid, None]
    on_box = box[valid] >= 0
    hits[on_box] = _clamp_into_boxes(hits[on_box], boxes[keep][box[valid][on_box]])
    lidar_from_world = rigid_inverse(world_from_lidar)
    xyz = hits @ lidar_from_world[:3, :3].T + lidar_from_world[:3, 3]
    cos_inc = np.abs(np.einsum('ij,ij->i', nrm, dirs_w))
    intensity = np.clip(np.round(_REFLECTIVITY[lab] * (0.3 + 0.7 * cos_inc)), 0, 255)
    points = np.column_stack([xyz, intensity, ring])
    return LidarScan(points.astype(np.float32), lab.astype(np.uint8), ins, origin, hits)


def _clamp_into_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Move (N, 3) world points on the surface of their (N, 7) boxes ``INSIDE_MARGIN`` inside."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    rel = points - boxes[:, :3]
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
    half = boxes[:, 3:6] / 2 - INSIDE_MARGIN
    local = np.clip(local, -half, half)
    world = np.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1],
                      local[:, 2]], 1)
    return world + boxes[:, :3]
