"""Array functions behind the training diagnostics (``tools/analysis_tools/diagnose_training.py``).

Where do LiDAR rays pass through the model grid, how does a coarse model grid map to the Occ3D
grid, and which voxels does a prediction call occupied although the ground truth says free.
Volumes are indexed (X, Y, Z) as Occ3D's; 17 is the free label.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from mmdet3d.structures.occ3d import FREE_LABEL
from mmdet3d.structures.voxel_grids import ray_segment_cells, swap_x_z

# Bin edges of the reports: horizontal distance of a voxel centre from the ego origin (m),
# LiDAR depth of a ray (m) and ray passes through a voxel's model cell.
RANGE_EDGES = (0.0, 10.0, 20.0, 30.0, 40.0, np.inf)
DEPTH_EDGES = (0.0, 5.0, 10.0, 20.0, 30.0, 40.0)
PASS_EDGES = (0, 1, 10, 100, np.iinfo(np.int64).max)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """'a-b' labels of the half-open bins [a, b) of ``edges`` ('>=a' for an open last bin)."""
    def is_open(v: float) -> bool:
        return bool(np.isinf(v)) or v >= np.iinfo(np.int64).max

    return [f'>={edges[i]:g}' if is_open(edges[i + 1]) else f'{edges[i]:g}-{edges[i + 1]:g}'
            for i in range(len(edges) - 1)]


def ray_cell_passes(origins: Tensor,
                    directions: Tensor,
                    lengths: Tensor,
                    pc_range: Sequence[float],
                    grid_size: Sequence[int],
                    near: float = 0.0,
                    step: float | None = None,
                    chunk: int = 4096) -> Tensor:
    """How many rays pass through each cell of a grid on their way to the LiDAR return.

    A ray covers the segment ``origin + t * direction``, ``near <= t < length``; it is sampled
    every ``step`` metres (at the step centres) and counts once for every cell that holds one
    of its samples. With the default step (a quarter of the smallest cell edge) a ray can miss
    only a cell it clips by less than a quarter cell.

    Args:
        origins: (R, 3) ray origins, metres, in the grid's frame.
        directions: (R, 3) unit directions.
        lengths: (R,) distance of the LiDAR return along the direction, metres.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the grid.
        grid_size: (X, Y, Z) cells.
        near: start of the segment along each ray. Defaults to 0.
        step: sampling step, metres. Defaults to None (a quarter of the smallest cell edge).
        chunk: rays processed at once (bounds memory). Defaults to 4096.

    Returns:
        (X, Y, Z) int64 number of rays per cell.
    """
    size = [int(v) for v in grid_size]
    num_cells = size[0] * size[1] * size[2]
    counts = torch.zeros(num_cells, dtype=torch.long)
    for ray_ids, flat in ray_segment_cells(origins.detach().cpu().double(),
                                           directions.detach().cpu().double(),
                                           lengths.detach().cpu().double(), pc_range, size,
                                           near, step, chunk):
        pairs = torch.unique(ray_ids * num_cells + flat)  # one per (ray, cell)
        counts += torch.bincount(pairs % num_cells, minlength=num_cells)
    return counts.view(*size)


def returns_volume(points: Tensor, labels: Tensor, pc_range: Sequence[float],
                   grid_size: Sequence[int], num_classes: int = FREE_LABEL) -> np.ndarray:
    """The volume that LiDAR returns alone describe: each cell holding a return is occupied by
    the most frequent label of its returns (ties to the smaller label), every other cell free.

    What rendering supervision can tell about a grid at most: the surfaces the rays end on,
    nothing behind them.

    Args:
        points: (P, 3) return positions in the grid's frame, metres.
        labels: (P,) int class of each return, 0..num_classes-1.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the grid.
        grid_size: (X, Y, Z) cells.
        num_classes: semantic classes; the free label is ``num_classes``. Defaults to 17.

    Returns:
        (X, Y, Z) uint8 labels.
    """
    lo = torch.tensor(pc_range[:3], dtype=torch.float64)
    size = torch.tensor([int(v) for v in grid_size])
    cell = (torch.tensor(pc_range[3:], dtype=torch.float64) - lo) / size
    cells = torch.floor((points.double().cpu() - lo) / cell).long()
    inside = ((cells >= 0) & (cells < size)).all(1)
    cells, labels = cells[inside], labels.cpu().long()[inside]
    flat = (cells[:, 0] * size[1] + cells[:, 1]) * size[2] + cells[:, 2]
    counts = torch.zeros(int(size.prod()) * num_classes, dtype=torch.int64)
    counts.index_add_(0, flat * num_classes + labels, torch.ones_like(flat))
    counts = counts.view(-1, num_classes)
    volume = torch.where(counts.sum(1) > 0, counts.argmax(1), num_classes)
    return volume.view(*size.tolist()).numpy().astype(np.uint8)


def voxel_ranges(shape: Sequence[int], pc_range: Sequence[float]) -> np.ndarray:
    """(X, Y, Z) horizontal distance of each voxel centre from the frame's origin, metres."""
    lo = np.asarray(pc_range[:3], np.float64)
    cell = (np.asarray(pc_range[3:], np.float64) - lo) / np.asarray(shape, np.float64)
    cx = lo[0] + (np.arange(shape[0]) + 0.5) * cell[0]
    cy = lo[1] + (np.arange(shape[1]) + 0.5) * cell[1]
    dist = np.hypot(cx[:, None], cy[None, :])  # (X, Y)
    return np.broadcast_to(dist[:, :, None], tuple(shape))


def binned_counts(values: np.ndarray, edges: Sequence[float], selected: np.ndarray,
                  flagged: np.ndarray) -> np.ndarray:
    """Per bin of ``values``: how many selected elements there are and how many are flagged.

    Args:
        values: (...) numbers binned into [edges[i], edges[i+1]).
        edges: increasing bin edges.
        selected: (...) bool, the elements counted.
        flagged: (...) bool, the property whose rate is reported.

    Returns:
        (num_bins, 2) int64: [selected, selected and flagged] per bin.
    """
    values = np.asarray(values)[selected]
    flagged = np.asarray(flagged)[selected]
    bins = np.digitize(values, np.asarray(edges[1:-1], np.float64), right=False)
    num_bins = len(edges) - 1
    inside = (values >= edges[0]) & (values < edges[-1])
    total = np.bincount(bins[inside], minlength=num_bins)
    hits = np.bincount(bins[inside & flagged], minlength=num_bins)
    return np.stack([total, hits], axis=1).astype(np.int64)


def free_where_gt_free(gt: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The prediction that takes the ground truth's free space and the model's classes.

    Args:
        gt: (X, Y, Z) GT labels (17 = free).
        classes: (X, Y, Z) the model's semantic argmax (0..16) everywhere.

    Returns:
        (X, Y, Z) uint8: 17 where the GT is free, the model's class elsewhere.
    """
    return np.where(np.asarray(gt) == FREE_LABEL, FREE_LABEL, classes).astype(np.uint8)


def occupancy_fields(labels: Tensor, logit_scale: float = 10.0,
                     num_classes: int = FREE_LABEL) -> tuple[Tensor, Tensor]:
    """A label volume as the fields a model predicts, to render it like a prediction.

    Args:
        labels: (X, Y, Z) integer labels (17 = free).
        logit_scale: logit of a voxel's own class (the others are 0). Defaults to 10.
        num_classes: semantic classes. Defaults to 17.

    Returns:
        in the model's (1, Z, Y, X, C) layout: density (1, Z, Y, X, 1): 1 where occupied, 0
        where free (the sigmoid density, before the renderer's ``density_scale``); semantics
        (1, Z, Y, X, K): ``logit_scale`` x one-hot of the class, all zero where free.
    """
    labels = swap_x_z(labels.long(), dim=0)  # (X, Y, Z) -> (Z, Y, X)
    occupied = labels != FREE_LABEL
    density = occupied.float()[None, ..., None]
    onehot = torch.nn.functional.one_hot(labels.clamp(max=num_classes - 1), num_classes)
    semantics = (onehot * occupied[..., None]).float()[None] * logit_scale
    return density, semantics
