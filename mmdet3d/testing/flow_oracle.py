"""The original flow-GT algorithm, directly (spec 5.2): the oracle of ``sample_flow``.

``reference_flow`` tests all 640,000 voxel centres against every enlarged box with
nuscenes-devkit ``Box`` / ``points_in_box`` for each offset, as the original did. It restates the
class tables and the grid on purpose (an independent reference), and is the baseline of
``tools/benchmarks/bench_flow.py``.
"""
from __future__ import annotations

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion

CLASSES = ['car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle',
           'bicycle', 'pedestrian', 'traffic_cone']
TO_OCC = [4, 10, 5, 3, 9, 1, 6, 2, 7, 8]
MOVABLE = {2, 3, 4, 5, 6, 7, 9, 10}


def dense_grid() -> tuple[np.ndarray, np.ndarray]:
    """All voxel centres (3, 640000) x, y, z and their (640000, 3) z, y, x indices, z-major."""
    xs = np.linspace(-39.8, 39.8, 200)
    zs = np.linspace(-0.8, 5.2, 16)
    zz, yy, xx = np.meshgrid(zs, xs, xs, indexing='ij')
    iz, iy, ix = np.meshgrid(np.arange(16), np.arange(200), np.arange(200), indexing='ij')
    return (np.stack([xx.ravel(), yy.ravel(), zz.ravel()]),
            np.stack([iz.ravel(), iy.ravel(), ix.ravel()], axis=1))


def _reference_boxes(info: dict, ref: dict) -> list[tuple[Box, int, str]]:
    """Valid movable boxes of ``info`` in the LiDAR-timestamp ego frame of ``ref``."""
    out = []
    for row, name, token, valid in zip(info['gt_boxes'], info['gt_names'],
                                       info['gt_instance_tokens'], info['valid_flag']):
        if not valid:
            continue
        label = TO_OCC[CLASSES.index(name) if name in CLASSES else -1]  # -1 wraps to 8 (quirk)
        if label not in MOVABLE:
            continue
        box = Box(row[:3], row[3:6], Quaternion(row[6:10]))
        box.rotate(Quaternion(info['lidar2ego_rotation']))
        box.translate(np.array(info['lidar2ego_translation']))
        if info is not ref:
            box.rotate(Quaternion(info['ego2global_rotation']))
            box.translate(np.array(info['ego2global_translation']))
            box.translate(-np.array(ref['ego2global_translation']))
            box.rotate(Quaternion(ref['ego2global_rotation']).inverse)
        out.append((box, label, token))
    return out


def _box_matrix(box: Box) -> np.ndarray:
    mat = np.eye(4)
    mat[:3, :3] = box.rotation_matrix
    mat[:3, 3] = box.center
    return mat


def reference_flow(infos: list[dict], k: int, horizon: int = 3, wlh_factor: float = 1.15,
                   grid: tuple[np.ndarray, np.ndarray] | None = None, reuse_masks: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The original algorithm, directly: returns (flow (n, 11) uint8, T (m, 4, 4) float32,
    indices (n,) uint16) of ``infos[k]`` (infos sorted by timestamp).

    ``reuse_masks`` keeps each box's dense inside mask across offsets (same result, fewer dense
    tests); the original recomputes it for every offset."""
    points, zyx = dense_grid() if grid is None else grid
    low, high = np.array([-40.0, -40.0, -1.0]), np.array([40.0, 40.0, 5.4])
    dims = np.array([16, 200, 200])
    info = infos[k]
    current = [b for b in _reference_boxes(info, info)
               if np.all(b[0].center > low) and np.all(b[0].center < high)]
    rows, transforms, indices, masks = [], [], [], {}
    offsets = [o for o in range(-horizon, horizon + 1) if o != 0]
    for s, offset in enumerate(offsets if current else []):
        j = k + offset
        if j < 0 or j >= len(infos) or infos[j]['scene_token'] != info['scene_token']:
            continue
        target = _reference_boxes(infos[j], info)
        target_tokens = np.array([t for _, _, t in target], dtype=object)
        matched = [(n, label, target[np.argwhere(target_tokens == token).item()][0])
                   for n, (_, label, token) in enumerate(current) if token in set(target_tokens)]
        for n, label, tgt in matched:
            src = current[n][0]
            motion = _box_matrix(tgt) @ np.linalg.inv(_box_matrix(src))
            if n not in masks:
                big = Box(src.center, src.wlh * wlh_factor + 0.4, src.orientation)
                masks[n] = np.flatnonzero(points_in_box(big, points))
            sel = masks[n] if reuse_masks else masks.pop(n)
            moved = (motion[:3, :3] @ points[:, sel]).T + motion[:3, 3]
            target_idx = np.clip(np.floor((moved - low) / 0.4)[:, ::-1], 0, dims - 1)
            corner = np.clip(np.floor((moved + 1e-5 - low - 0.2) / 0.4)[:, ::-1], 0, dims - 1)
            block = np.concatenate([zyx[sel], target_idx, corner, np.full((len(sel), 1), label),
                                    np.full((len(sel), 1), s)], axis=1)
            rows.append(block.astype(np.uint8))
            indices.append(np.full(len(sel), len(transforms), dtype=np.uint16))
            transforms.append(motion.astype(np.float32))
    if not transforms:
        return np.zeros((0, 11), np.uint8), np.zeros((0, 4, 4), np.float32), np.zeros(0, np.uint16)
    return np.concatenate(rows), np.stack(transforms), np.concatenate(indices)
