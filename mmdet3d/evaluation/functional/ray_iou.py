"""RayIoU of SparseOcc (CVPR 2024) as vectorised torch/numpy functions.

RayIoU casts the same LiDAR-like rays through the predicted and the GT occupancy volume and
compares, ray by ray, the class and the distance of the first occupied voxel.

Facts taken from the public SparseOcc code (MCG-NJU/SparseOcc: ``loaders/ray_metrics.py``,
``loaders/ego_pose_dataset.py``, ``rayiou_metrics/rayiou_metrics/ray_metrics.py``, and its ray
caster ``rayiou_metrics/lib/dvr_cpu/dvr_render_cpu.cpp``; the CUDA kernel ``lib/dvr/dvr.cu``
was read in the copy shipped with Yzichen/FlashOCC, same "modified by Haisong Liu" header, same
logic as the CPU port; it derives from tarashakhurana/4d-occ-forecasting ``lib/dvr/dvr.cu``, whose
``render_forward`` returned an expected (alpha-composited) depth instead of the first hit):

* Origins and end points are converted to voxel units (``(p - pc_min) / voxel_size``) before the
  caster runs; the returned distance is multiplied by ``voxel_size`` afterwards, so it is in
  metres along the unit ray direction.
* The origin's voxel is the coordinate truncated toward zero (C ``int()``), the same as ``floor``
  for origins at or above ``pc_min`` (all LiDAR origins of Occ3D).
* Traversal is Amanatides-Woo: one axis is stepped per iteration; the step is x if
  ``t_x < t_y and t_x < t_z``, else y if ``t_y < t_z``, else z. On ties z therefore wins over y
  and y over x, and a ray through a voxel edge or corner also visits the neighbour voxel(s) of
  the stepped axes with zero length. ``t_next`` is advanced by repeated addition of ``t_delta``.
* The distance recorded for a voxel is the ray parameter at which the ray *leaves* it (its exit
  ``min(t_next)``), not where it enters nor its centre. The hit is the first traversed voxel with
  occupancy > 0.5; an origin inside an occupied voxel therefore hits that voxel at its exit
  parameter (0 only if the origin lies on the exit face).
* A ray that traverses the grid without a hit returns the exit parameter of the last voxel in the
  grid and that (free) voxel's index, so its label is 'free'. Traversal ends when the ray leaves
  the grid after having been inside; from an origin outside the grid it walks until it enters
  (capped at 1000 steps). A ray that never enters returns distance -1 and index (0, 0, 0).
* The metric binarises each volume (``label < free`` -> 1, ``label == free`` -> 0, other labels
  keep their value, i.e. count as occupied), reads the class at the hit voxel, and drops rays
  whose GT class is 'free'. Per class c and threshold t: TP counts kept rays with GT class ==
  predicted class == c and ``|d_pred - d_gt| < t``; GT and Pred count the kept rays whose GT,
  resp. predicted, class is c, whatever the distance. These counts are summed over the split,
  ``IoU = TP / (GT + Pred - TP)``, 'free' is left out of the mean (on Occ3D the 17 classes
  0-16, 'others' included) and RayIoU is the NaN-mean over classes and the thresholds 1, 2, 4 m.
* Origins: the LiDAR positions of every keyframe of the sample's scene expressed in the sample's
  ego frame, kept if ``|x| < 39`` and ``|y| < 39`` m, then at most 8 of them at indices
  ``round(linspace(0, n - 1, 8))``. Rays: 360 one-degree azimuths times 39 pitches.

Deliberate differences, none reachable with Occ3D LiDAR origins (inside the grid): a ray that
never enters the grid is reported as no hit (dvr returns distance -1 and voxel (0, 0, 0), whose
label SparseOcc then reads), and there is no 1000-step cap. Rays are cast in float64 from the given
unit directions, whereas SparseOcc rounds origin and end point to float32 voxel coordinates and
returns float32 distances, which can only move exact ties (a distance error exactly at a
threshold, a ray exactly through a voxel edge).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import numba
import numpy as np
import torch

from mmdet3d.structures.occ3d import (CLASS_NAMES, FREE_LABEL, GRID_LOWER, NUM_SEMANTIC_CLASSES,
                                      VOXEL_SIZE)

RAY_IOU_THRESHOLDS = (1.0, 2.0, 4.0)
ORIGIN_MAX_ABS_XY = 39.0
MAX_RAY_ORIGINS = 8

ArrayLike = Union[np.ndarray, torch.Tensor]


def lidar_pitches() -> np.ndarray:
    """SparseOcc's 39 pitch angles (rad, ascending).

    ``-(pi/2 - atan(k + 1))`` for k = 0..9, then extended linearly by the last difference until
    the last pitch is >= 0.21 rad (the top of the nuScenes LiDAR field of view).

    Returns:
        (39,) float64.
    """
    pitches = [-(math.pi / 2 - math.atan(k + 1)) for k in range(10)]
    while pitches[-1] < 0.21:
        pitches.append(2 * pitches[-1] - pitches[-2])
    return np.asarray(pitches, dtype=np.float64)


def lidar_ray_directions() -> np.ndarray:
    """Unit ray directions, pitch-major, azimuths 0..359 degrees.

    Returns:
        (14040, 3) float32 ``(cos p cos a, cos p sin a, sin p)``.
    """
    pitch = lidar_pitches()[:, None]
    azimuth = np.deg2rad(np.arange(360))[None, :]
    directions = np.stack(np.broadcast_arrays(np.cos(pitch) * np.cos(azimuth),
                                              np.cos(pitch) * np.sin(azimuth),
                                              np.sin(pitch)), axis=-1)
    return directions.reshape(-1, 3).astype(np.float32)


def lidar_origins_in_ego(ego2global_key: np.ndarray,
                         lidar2global_per_keyframe: np.ndarray) -> np.ndarray:
    """LiDAR positions of a scene's keyframes in the ego frame of the evaluated keyframe.

    Args:
        ego2global_key: (4, 4) ego-to-global pose of the evaluated keyframe.
        lidar2global_per_keyframe: (n, 4, 4) lidar-to-global poses of the scene's keyframes.

    Returns:
        (n, 3) float64 ``inverse(ego2global_key) @ lidar2global[i][:, 3]``.
    """
    global2ego = np.linalg.inv(np.asarray(ego2global_key, dtype=np.float64))
    lidar_positions = np.asarray(lidar2global_per_keyframe, dtype=np.float64)[:, :, 3]
    return (lidar_positions @ global2ego.T)[:, :3]


def select_ray_origins(origins_in_ego: np.ndarray,
                       max_abs_xy: float = ORIGIN_MAX_ABS_XY,
                       max_origins: int = MAX_RAY_ORIGINS) -> np.ndarray:
    """Keep origins with ``|x|, |y| < max_abs_xy`` and subsample them evenly to ``max_origins``.

    Args:
        origins_in_ego: (n, 3) origins in the scene's keyframe order.
        max_abs_xy: horizontal half-extent in metres. Defaults to 39.
        max_origins: most origins kept, at ``round(linspace(0, m - 1, max_origins))``.
            Defaults to 8.

    Returns:
        (m, 3) selected origins, order preserved.
    """
    origins = np.asarray(origins_in_ego)
    inside = (np.abs(origins[:, 0]) < max_abs_xy) & (np.abs(origins[:, 1]) < max_abs_xy)
    origins = origins[inside]
    if len(origins) > max_origins:
        origins = origins[np.round(np.linspace(0, len(origins) - 1, max_origins)).astype(np.int64)]
    return origins


def cast_rays(occupied: torch.Tensor,
              origins: ArrayLike,
              directions: ArrayLike,
              pc_min: Sequence[float] = GRID_LOWER,
              voxel_size: float = VOXEL_SIZE,
              impl: str = 'auto') -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First occupied voxel along each ray, traversed voxel by voxel like SparseOcc's dvr.

    Ties between axes step z before y before x (see the module docstring). Two
    implementations with bit-identical results: ``'numba'`` walks each ray in compiled code, in
    parallel over rays (CPU); ``'torch'`` advances all rays together, one voxel per iteration,
    dropping finished rays (any device). ``'auto'``: numba for CPU tensors, else torch.

    Args:
        occupied: (X, Y, Z) bool occupancy, indexed [x, y, z], on the device used for casting.
        origins: (R, 3) ray origins in metres.
        directions: (R, 3) ray directions (normalised here).
        pc_min: metric position of the grid's minimum corner. Defaults to Occ3D's.
        voxel_size: voxel edge in metres. Defaults to 0.4.

    Returns:
        hit: (R,) bool, whether an occupied voxel was reached.
        distance: (R,) float64 metres: the exit parameter of the hit voxel; without a hit, that
            of the last voxel in the grid; NaN for a ray that never enters the grid.
        voxel_index: (R, 3) int64 [x, y, z] of the hit voxel, or of the last voxel in the grid
            without a hit, or -1 for a ray that never enters the grid.
    """
    if impl not in ('auto', 'numba', 'torch'):
        raise ValueError(f"impl must be 'auto', 'numba' or 'torch', got {impl!r}")
    device = occupied.device
    occupied_flat = occupied.to(torch.bool).reshape(-1)
    grid_size = torch.tensor(occupied.shape, device=device)
    strides = torch.tensor([occupied.shape[1] * occupied.shape[2], occupied.shape[2], 1],
                           device=device)
    origins = torch.as_tensor(origins, dtype=torch.float64, device=device).reshape(-1, 3)
    directions = torch.as_tensor(directions, dtype=torch.float64, device=device).reshape(-1, 3)
    lengths = directions.norm(dim=1, keepdim=True)
    start = (origins - torch.tensor(pc_min, dtype=torch.float64, device=device)) / voxel_size
    if not (torch.isfinite(start).all() and torch.isfinite(lengths).all() and (lengths > 0).all()):
        raise ValueError('origins must be finite and directions finite and non-zero')
    directions = directions / lengths
    if impl == 'numba' or (impl == 'auto' and device.type == 'cpu'):
        hit, distance, voxel_index = _cast_rays_numba(
            occupied.to(torch.bool).cpu().numpy(), start.cpu().numpy(),
            directions.cpu().numpy(), float(voxel_size))
        return (torch.from_numpy(hit).to(device), torch.from_numpy(distance).to(device),
                torch.from_numpy(voxel_index).to(device))
    num_rays = len(origins)

    voxel = start.trunc().long()
    step = torch.where(directions >= 0, 1, -1)
    moving = directions != 0
    t_next = torch.where(moving, (voxel + (step > 0) - start) / directions, math.inf)
    t_delta = torch.where(moving, step / directions, math.inf)

    hit = torch.zeros(num_rays, dtype=torch.bool, device=device)
    distance = torch.full((num_rays, ), math.nan, dtype=torch.float64, device=device)
    voxel_index = torch.full((num_rays, 3), -1, dtype=torch.long, device=device)
    ray_ids = torch.arange(num_rays, device=device)
    entered = torch.zeros(num_rays, dtype=torch.bool, device=device)

    while len(ray_ids):
        inside = ((voxel >= 0) & (voxel < grid_size)).all(dim=1)
        t_x, t_y, t_z = t_next.unbind(dim=1)
        axis = torch.where((t_x < t_y) & (t_x < t_z), 0, torch.where((t_x >= t_y) & (t_y < t_z),
                                                                       1, 2))
        t_exit = t_next.gather(1, axis[:, None]).squeeze(1)

        flat_index = (voxel.clamp(min=torch.zeros_like(grid_size), max=grid_size - 1) *
                      strides).sum(dim=1)
        newly_hit = inside & occupied_flat[flat_index]
        hit[ray_ids[newly_hit]] = True
        distance[ray_ids[inside]] = t_exit[inside] * voxel_size
        voxel_index[ray_ids[inside]] = voxel[inside]

        outside_low = (voxel < 0) & (directions <= 0)
        outside_high = (voxel >= grid_size) & (directions >= 0)
        never_enters = (outside_low | outside_high).any(dim=1)
        finished = newly_hit | (~inside & (entered | never_enters))
        entered |= inside

        rows = torch.arange(len(ray_ids), device=device)
        voxel[rows, axis] += step[rows, axis]
        t_next[rows, axis] += t_delta[rows, axis]

        keep = ~finished
        ray_ids, voxel, t_next, step, t_delta, directions, entered = (
            tensor[keep] for tensor in (ray_ids, voxel, t_next, step, t_delta, directions, entered))
    return hit, distance, voxel_index


@numba.njit(parallel=True, cache=False)
def _cast_rays_numba(occupied: np.ndarray, start: np.ndarray, directions: np.ndarray,
                     voxel_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cast_rays` per ray in compiled code: (X, Y, Z) bool, (R, 3) start in voxel units,
    (R, 3) unit directions -> hit (R,), distance (R,) metres, voxel index (R, 3)."""
    num_rays = start.shape[0]
    size = occupied.shape
    hit = np.zeros(num_rays, np.bool_)
    distance = np.full(num_rays, np.nan)
    voxel_index = np.full((num_rays, 3), -1, np.int64)
    for r in numba.prange(num_rays):
        voxel = np.empty(3, np.int64)
        step = np.empty(3, np.int64)
        t_next = np.empty(3)
        t_delta = np.empty(3)
        for a in range(3):
            voxel[a] = int(start[r, a])  # truncation toward zero, as torch.trunc
            step[a] = 1 if directions[r, a] >= 0 else -1
            if directions[r, a] != 0:
                t_next[a] = (voxel[a] + (1 if step[a] > 0 else 0) - start[r, a]) / directions[r, a]
                t_delta[a] = step[a] / directions[r, a]
            else:
                t_next[a] = np.inf
                t_delta[a] = np.inf
        entered = False
        while True:
            inside = True
            never_enters = False
            for a in range(3):
                if voxel[a] < 0 or voxel[a] >= size[a]:
                    inside = False
                if (voxel[a] < 0 and directions[r, a] <= 0) or (
                        voxel[a] >= size[a] and directions[r, a] >= 0):
                    never_enters = True
            if t_next[0] < t_next[1] and t_next[0] < t_next[2]:
                axis = 0
            elif t_next[0] >= t_next[1] and t_next[1] < t_next[2]:
                axis = 1
            else:
                axis = 2
            if inside:
                distance[r] = t_next[axis] * voxel_size
                voxel_index[r, 0], voxel_index[r, 1], voxel_index[r, 2] = voxel[0], voxel[1], voxel[2]
                if occupied[voxel[0], voxel[1], voxel[2]]:
                    hit[r] = True
                    break
            elif entered or never_enters:
                break
            entered = entered or inside
            voxel[axis] += step[axis]
            t_next[axis] += t_delta[axis]
    return hit, distance, voxel_index


def _first_hit_classes(labels: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor,
                       free_label: int, pc_min: Sequence[float],
                       voxel_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Class (``free_label`` without a hit) and distance of every origin x direction ray.

    Args:
        labels: (X, Y, Z) int64 labels.
        origins: (m, 3) origins in metres.
        directions: (K, 3) directions shared by all origins.

    Returns:
        classes: (m * K,) int64, origin-major; distances: (m * K,) float64 metres.
    """
    ray_origins = origins.repeat_interleave(len(directions), dim=0)
    ray_directions = directions.repeat(len(origins), 1)
    hit, distance, voxel_index = cast_rays(labels != free_label, ray_origins, ray_directions,
                                           pc_min, voxel_size)
    classes = torch.full_like(hit, free_label, dtype=torch.long)
    classes[hit] = labels[tuple(voxel_index[hit].unbind(dim=1))]
    return classes, distance


class RayIoUAccumulator:
    """Accumulates RayIoU counts sample by sample; :meth:`compute` gives the split's metric.

    Args:
        class_names: names of the evaluated classes ``0 .. C-1``. Defaults to the 17 Occ3D
            semantic classes ('others' included, 'free' excluded).
        free_label: label of empty voxels. Defaults to 17.
        thresholds: distance thresholds in metres. Defaults to (1, 2, 4).
        pc_min: metric minimum corner of the grid. Defaults to Occ3D's (-40, -40, -1).
        voxel_size: voxel edge in metres. Defaults to 0.4.
        directions: (K, 3) ray directions; None uses :func:`lidar_ray_directions`.
    """

    def __init__(self,
                 class_names: Sequence[str] = CLASS_NAMES[:NUM_SEMANTIC_CLASSES],
                 free_label: int = FREE_LABEL,
                 thresholds: Sequence[float] = RAY_IOU_THRESHOLDS,
                 pc_min: Sequence[float] = GRID_LOWER,
                 voxel_size: float = VOXEL_SIZE,
                 directions: ArrayLike | None = None) -> None:
        self.class_names = tuple(class_names)
        self.free_label = free_label
        self.thresholds = tuple(float(t) for t in thresholds)
        self.pc_min = tuple(float(v) for v in pc_min)
        self.voxel_size = float(voxel_size)
        self.directions = torch.as_tensor(
            lidar_ray_directions() if directions is None else directions, dtype=torch.float64)
        num_classes = len(self.class_names)
        self.true_positives = np.zeros((len(self.thresholds), num_classes), dtype=np.int64)
        self.gt_counts = np.zeros(num_classes, dtype=np.int64)
        self.pred_counts = np.zeros(num_classes, dtype=np.int64)

    def add(self, pred: ArrayLike, gt: ArrayLike, origins: ArrayLike) -> None:
        """Count the rays of one sample.

        Args:
            pred: (X, Y, Z) predicted labels; a tensor's device is used for casting.
            gt: (X, Y, Z) GT labels.
            origins: (m, 3) ray origins in metres, e.g. from :func:`select_ray_origins`.
        """
        pred, gt = torch.as_tensor(pred), torch.as_tensor(gt)
        device = pred.device if pred.device.type != 'cpu' else gt.device
        pred, gt = pred.to(device).long(), gt.to(device).long()
        if pred.shape != gt.shape:
            raise ValueError(f'prediction shape {tuple(pred.shape)} differs from GT shape '
                             f'{tuple(gt.shape)}')
        origins = torch.as_tensor(origins, dtype=torch.float64, device=device).reshape(-1, 3)
        directions = self.directions.to(device)
        geometry = (self.free_label, self.pc_min, self.voxel_size)
        gt_classes, gt_distances = _first_hit_classes(gt, origins, directions, *geometry)
        pred_classes, pred_distances = _first_hit_classes(pred, origins, directions, *geometry)

        kept = gt_classes != self.free_label
        gt_classes, pred_classes = gt_classes[kept], pred_classes[kept]
        distance_error = (pred_distances[kept] - gt_distances[kept]).abs()

        num_classes = len(self.class_names)
        gt_evaluated = (gt_classes >= 0) & (gt_classes < num_classes)
        pred_evaluated = (pred_classes >= 0) & (pred_classes < num_classes)
        self.gt_counts += torch.bincount(gt_classes[gt_evaluated],
                                         minlength=num_classes).cpu().numpy()
        self.pred_counts += torch.bincount(pred_classes[pred_evaluated],
                                           minlength=num_classes).cpu().numpy()
        same_class = gt_evaluated & (gt_classes == pred_classes)
        for j, threshold in enumerate(self.thresholds):
            close = same_class & (distance_error < threshold)
            self.true_positives[j] += torch.bincount(gt_classes[close],
                                                     minlength=num_classes).cpu().numpy()

    def per_class_iou(self) -> np.ndarray:
        """(T, C) float64 IoU in [0, 1] per threshold and class; NaN where GT + Pred = 0."""
        union = self.gt_counts + self.pred_counts - self.true_positives
        with np.errstate(divide='ignore', invalid='ignore'):
            return self.true_positives / union

    def compute(self) -> dict[str, float]:
        """The split's RayIoU in percent.

        Returns:
            ``'RayIoU@<t>_<class name>'`` per threshold and class, ``'RayIoU@<t>'`` (NaN-mean
            over classes) per threshold, and ``'RayIoU'`` (their mean); e.g. ``'RayIoU@1_car'``,
            ``'RayIoU@1'``, ``'RayIoU@2'``, ``'RayIoU@4'``, ``'RayIoU'``. NaN where nothing was
            counted.
        """
        ious = self.per_class_iou() * 100
        results = {}
        for threshold, threshold_ious in zip(self.thresholds, ious):
            for name, iou in zip(self.class_names, threshold_ious):
                results[f'RayIoU@{threshold:g}_{name}'] = float(iou)
        for threshold, threshold_ious in zip(self.thresholds, ious):
            results[f'RayIoU@{threshold:g}'] = _nanmean(threshold_ious)
        results['RayIoU'] = _nanmean(ious)
        return results

    def report(self, num_samples: int | None = None) -> str:
        """A table of :meth:`compute`: one row per class and a mean row, one column per
        threshold, then ``===> RayIoU of N samples: x.xx``.

        Args:
            num_samples: number of evaluated samples shown in the header and the last line.
                Defaults to None ('?').
        """
        results = self.compute()
        n = '?' if num_samples is None else str(num_samples)
        width = max(len(name) for name in (*self.class_names, 'mean'))
        columns = [f'RayIoU@{t:g}' for t in self.thresholds]
        lines = [f'===> per class RayIoU of {n} samples:',
                 ' '.join([' ' * width, *(f'{c:>9}' for c in columns)])]
        for name in self.class_names:
            values = (results[f'{column}_{name}'] for column in columns)
            lines.append(' '.join([f'{name:<{width}}', *(f'{v:9.2f}' for v in values)]))
        lines.append(' '.join([f'{"mean":<{width}}', *(f'{results[c]:9.2f}' for c in columns)]))
        lines.append(f'===> RayIoU of {n} samples: {results["RayIoU"]:.2f}')
        return '\n'.join(lines)


def _nanmean(values: np.ndarray) -> float:
    """NaN-mean that returns NaN without a warning when every value is NaN."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else math.nan


def ray_iou(preds: Sequence[ArrayLike],
            gts: Sequence[ArrayLike],
            origins_list: Sequence[ArrayLike],
            **accumulator_kwargs) -> dict[str, float]:
    """RayIoU of a split given as lists.

    Args:
        preds: per-sample (X, Y, Z) predicted labels.
        gts: per-sample (X, Y, Z) GT labels.
        origins_list: per-sample (m, 3) ray origins in metres.
        **accumulator_kwargs: grid geometry, classes, thresholds and directions, as in
            :class:`RayIoUAccumulator`.

    Returns:
        The dict of :meth:`RayIoUAccumulator.compute`.
    """
    if not len(preds) == len(gts) == len(origins_list):
        raise ValueError(f'got {len(preds)} predictions, {len(gts)} GT volumes and '
                         f'{len(origins_list)} origin sets')
    accumulator = RayIoUAccumulator(**accumulator_kwargs)
    for pred, gt, origins in zip(preds, gts, origins_list):
        accumulator.add(pred, gt, origins)
    return accumulator.compute()
