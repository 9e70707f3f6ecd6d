"""Occupancy-flow ground truth: voxel correspondences of moving boxes (spec 5.2, 12.1).

For a keyframe k and each offset o in ``[-h..-1, 1..h]`` (stored index s = 0..2h-1 in that
order), every voxel of the Occ3D grid whose centre lies inside an enlarged movable box at time k
is paired with where the box's rigid motion takes it at time k + o. All geometry is in the
LiDAR-timestamp ego frame E0 of keyframe k (metres). Rows follow the original algorithm: boxes of
the movable classes {2, 3, 4, 5, 6, 7, 9, 10} with ``valid_flag``, current centres strictly
inside the range, instance-token matching, boxes enlarged to ``wlh * wlh_factor + 0.4`` m with the
devkit ``points_in_box`` test, targets clamped into the grid, offsets outside the scene skipped.

The file format (``FlowGT``, ``flow_path``, ``save_flow``) is :mod:`mmdet3d.formats.flow_rows`.

Unlike the original, each box's inside test only looks at the voxels of its axis-aligned bounding
box, is computed once per sample instead of once per offset, and samples run in worker processes.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmdet3d.formats.flow_rows import FlowGT, flow_path, save_flow
from mmdet3d.structures.occ3d import (DETECTION_CLASSES, DETECTION_TO_OCC3D, FLOW_CLASS,
                                      FLOW_CLASSES, FLOW_FLOOR, FLOW_FRAME, FLOW_ROW_WIDTH,
                                      FLOW_SRC, FLOW_TGT, GRID_SHAPE, POINT_CLOUD_RANGE,
                                      VOXEL_SIZE)
from mmdet3d.structures.pose import pose_matrix, quat_to_rotmat

FLOW_INFO_KEYS = ('token', 'scene_name', 'scene_token', 'timestamp', 'ego2global_translation',
                  'ego2global_rotation', 'lidar2ego_translation', 'lidar2ego_rotation',
                  'gt_boxes', 'gt_names', 'gt_instance_tokens', 'valid_flag')
_OCC_OF_NAME = dict(zip(DETECTION_CLASSES, DETECTION_TO_OCC3D))
# the grid as arrays for the index arithmetic below
PC_RANGE = np.array(POINT_CLOUD_RANGE)
GRID_SIZE = np.array(GRID_SHAPE)


@dataclass(frozen=True)
class EgoBoxes:
    """Movable boxes in an ego frame: centres (n, 3) m, rotations (n, 3, 3) box->ego, wlh (n, 3)
    m, Occ3D labels (n,) int64 and instance tokens (n,) object."""

    centers: np.ndarray
    rotations: np.ndarray
    wlh: np.ndarray
    labels: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> EgoBoxes:
        return EgoBoxes(self.centers[index], self.rotations[index], self.wlh[index],
                        self.labels[index], self.tokens[index])


def movable_boxes(info: dict[str, Any], ego_from_lidar: np.ndarray) -> EgoBoxes:
    """Valid boxes of the flow classes of ``info``, moved from its LiDAR frame into an ego frame.

    Args:
        info: one info dict (spec 5.1); ``gt_boxes`` rows are LiDAR-frame (x, y, z, w, l, h, q).
        ego_from_lidar: (4, 4) transform from the info's LiDAR frame to the wanted ego frame.

    Raises:
        ValueError: ``gt_boxes`` is not (N, 10) or the per-box arrays disagree in length.
    """
    boxes = np.asarray(info['gt_boxes'], dtype=np.float64)
    names = np.asarray(info['gt_names']).reshape(-1)
    tokens = np.asarray(info['gt_instance_tokens'], dtype=object).reshape(-1)
    valid = np.asarray(info['valid_flag'], dtype=bool).reshape(-1)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 10)
    if boxes.ndim != 2 or boxes.shape[1] != 10 or not (
            len(boxes) == len(names) == len(tokens) == len(valid)):
        raise ValueError(
            f"info {info.get('token')}: expected gt_boxes (N, 10) with N gt_names, "
            f'gt_instance_tokens and valid_flag, got {boxes.shape}, {len(names)}, {len(tokens)}, '
            f'{len(valid)}')
    labels = np.array([_OCC_OF_NAME.get(str(name), -1) for name in names], dtype=np.int64)
    keep = np.flatnonzero(valid & np.isin(labels, FLOW_CLASSES))
    rot = ego_from_lidar[:3, :3]
    return EgoBoxes(
        centers=boxes[keep, :3] @ rot.T + ego_from_lidar[:3, 3],
        rotations=rot @ quat_to_rotmat(boxes[keep, 6:10]).reshape(-1, 3, 3),
        wlh=boxes[keep, 3:6],
        labels=labels[keep],
        tokens=tokens[keep],
    )


def _axis_centers(axis: int, lo: int, hi: int) -> np.ndarray:
    return PC_RANGE[axis] + (np.arange(lo, hi + 1) + 0.5) * VOXEL_SIZE


def voxels_in_box(center: np.ndarray, rotation: np.ndarray, wlh: np.ndarray) -> np.ndarray:
    """Voxels whose centre is inside a box, with nuScenes-devkit ``points_in_box`` semantics.

    Only the voxels of the box's axis-aligned bounding box (plus one voxel of margin) are tested.

    Args:
        center: (3,) box centre, ego frame, m.
        rotation: (3, 3) box -> ego rotation (box x along l, y along w, z along h).
        wlh: (3,) box size (width, length, height), m.

    Returns:
        (m, 3) int64 voxel indices in (z, y, x) order, sorted by linear index z*Y*X + y*X + x.
    """
    half = np.abs(rotation) @ (np.array([wlh[1], wlh[0], wlh[2]]) / 2)
    lo = np.floor((center - half - PC_RANGE[:3]) / VOXEL_SIZE - 0.5).astype(np.int64) - 1
    hi = np.ceil((center + half - PC_RANGE[:3]) / VOXEL_SIZE - 0.5).astype(np.int64) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, GRID_SIZE - 1)
    if np.any(hi < lo):
        return np.zeros((0, 3), dtype=np.int64)
    iz, iy, ix = np.meshgrid(*(np.arange(lo[a], hi[a] + 1) for a in (2, 1, 0)), indexing='ij')
    cz, cy, cx = np.meshgrid(*(_axis_centers(a, lo[a], hi[a]) for a in (2, 1, 0)),
                             indexing='ij')
    points = np.stack([cx.ravel(), cy.ravel(), cz.ravel()], axis=1)
    # Corners 0, 4, 1, 3 of devkit Box.corners(): (+l, +w, +h), (-l, ..), (.., -w, ..), (.., -h).
    w, l, h = wlh / 2
    local = np.array([[l, w, h], [-l, w, h], [l, -w, h], [l, w, -h]])
    corners = local @ rotation.T + center
    p1 = corners[0]
    edges = corners[1:] - p1
    proj = (points - p1) @ edges.T
    limits = np.sum(edges * edges, axis=1)
    inside = np.all((proj >= 0) & (proj <= limits), axis=1)
    return np.stack([iz.ravel()[inside], iy.ravel()[inside], ix.ravel()[inside]], axis=1)


def _zyx_indices(points: np.ndarray, shift: float) -> np.ndarray:
    """Clamped voxel indices in (z, y, x) order of (n, 3) x, y, z points."""
    idx = np.floor((points + shift - PC_RANGE[:3]) / VOXEL_SIZE).astype(np.int64)
    idx = np.clip(idx, 0, GRID_SIZE - 1)
    return idx[:, ::-1]


def sample_flow(infos: Sequence[dict[str, Any]], k: int, horizon: int = 3,
                wlh_factor: float = 1.15) -> FlowGT:
    """Flow ground truth of ``infos[k]``; ``infos`` must be sorted by timestamp.

    Raises:
        ValueError: an instance token occurs twice among the target boxes it is matched to.
    """
    info = infos[k]
    global_from_ego0 = pose_matrix(info['ego2global_translation'], info['ego2global_rotation'])
    ego0_from_global = np.linalg.inv(global_from_ego0)
    current = movable_boxes(
        info, pose_matrix(info['lidar2ego_translation'], info['lidar2ego_rotation']))
    in_range = np.all((current.centers > PC_RANGE[:3]) & (current.centers < PC_RANGE[3:]), axis=1)
    current = current.take(np.flatnonzero(in_range))
    if len(current) == 0:
        return FlowGT.empty()
    inside = [voxels_in_box(c, r, wlh * wlh_factor + 0.4)
              for c, r, wlh in zip(current.centers, current.rotations, current.wlh)]
    offsets = [o for o in range(-horizon, horizon + 1) if o != 0]
    rows, transforms, indices = [], [], []
    for s, offset in enumerate(offsets):
        j = k + offset
        if not 0 <= j < len(infos) or infos[j]['scene_token'] != info['scene_token']:
            continue
        other = infos[j]
        ego0_from_lidar_j = ego0_from_global @ pose_matrix(
            other['ego2global_translation'], other['ego2global_rotation']) @ pose_matrix(
                other['lidar2ego_translation'], other['lidar2ego_rotation'])
        target = movable_boxes(other, ego0_from_lidar_j)
        position = {token: idx for idx, token in enumerate(target.tokens)}
        matched = [(b, position[tok]) for b, tok in enumerate(current.tokens) if tok in position]
        counts = Counter(target.tokens)
        duplicates = sorted({tok for tok in current.tokens[[b for b, _ in matched]]
                             if counts[tok] > 1})
        if duplicates:
            raise ValueError(f"sample {other['token']}: instance token(s) {duplicates} occur "
                             'more than once among the movable boxes')
        if not matched:
            continue
        for b, t in matched:
            rot = target.rotations[t] @ current.rotations[b].T
            trans = target.centers[t] - rot @ current.centers[b]
            motion = np.eye(4)
            motion[:3, :3], motion[:3, 3] = rot, trans
            src = inside[b]
            centres = PC_RANGE[:3] + (src[:, ::-1] + 0.5) * VOXEL_SIZE
            moved = centres @ rot.T + trans
            block = np.empty((len(src), FLOW_ROW_WIDTH), dtype=np.int64)
            block[:, FLOW_SRC] = src
            block[:, FLOW_TGT] = _zyx_indices(moved, 0.0)
            block[:, FLOW_FLOOR] = _zyx_indices(moved, 1e-5 - VOXEL_SIZE / 2)
            block[:, FLOW_CLASS] = current.labels[b]
            block[:, FLOW_FRAME] = s
            indices.append(np.full(len(src), len(transforms), dtype=np.int64))
            rows.append(block)
            transforms.append(motion)
    if not transforms:
        return FlowGT.empty()
    return FlowGT(np.concatenate(rows).astype(np.uint8),
                  np.stack(transforms).astype(np.float32),
                  np.concatenate(indices).astype(np.uint16))


def sort_infos(infos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Infos reduced to the keys flow generation reads, sorted by timestamp (stable)."""
    return [{key: info[key] for key in FLOW_INFO_KEYS}
            for info in sorted(infos, key=lambda info: info['timestamp'])]


def pending_indices(infos: Sequence[dict[str, Any]], out_dir: str, overwrite: bool) -> list[int]:
    """Indices whose output file is missing (all of them with ``overwrite``)."""
    return [k for k, info in enumerate(infos)
            if overwrite or not os.path.isfile(flow_path(out_dir, info))]


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(infos: list[dict[str, Any]], out_dir: str, horizon: int,
                 wlh_factor: float) -> None:
    _WORKER_STATE.update(infos=infos, out_dir=out_dir, horizon=horizon, wlh_factor=wlh_factor)


def _write_one(k: int) -> int:
    state = _WORKER_STATE
    gt = sample_flow(state['infos'], k, state['horizon'], state['wlh_factor'])
    save_flow(flow_path(state['out_dir'], state['infos'][k]), gt)
    return len(gt.flow)


def write_flow(infos: list[dict[str, Any]], indices: Sequence[int], out_dir: str,
               horizon: int = 3, wlh_factor: float = 1.15, workers: int = 0) -> Iterator[int]:
    """Compute and write the flow files of ``infos[indices]``; yields each file's row count.

    Args:
        infos: output of :func:`sort_infos` (one split).
        indices: which samples to write, e.g. :func:`pending_indices`.
        workers: worker processes; 0 runs in this process. Results come in completion order.
    """
    args = (infos, out_dir, horizon, wlh_factor)
    if workers <= 0:
        _init_worker(*args)
        yield from map(_write_one, indices)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context('fork' if 'fork' in methods else None)
    with context.Pool(workers, initializer=_init_worker, initargs=args) as pool:
        yield from pool.imap_unordered(_write_one, indices, chunksize=4)
