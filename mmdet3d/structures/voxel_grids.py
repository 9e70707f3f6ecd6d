"""Voxel layouts, grids and ray segments shared by the detector and the evaluation.

Layouts: inside the model every volume is (B, Z, Y, X, C) (the 3-D encoder's (B, C, Z, Y, X)
with the channels last, the order the renderer and the flow rows index); the Occ3D ground truth,
predictions and metrics are (X, Y, Z). :func:`swap_x_z` converts between the two, at prediction
and metric time only. Grids: integer refinement between a coarse model grid and a fine label
grid (e.g. 100x100x16 -> Occ3D's 200x200x16). Ray segments: the cells LiDAR rays pass through on
their way to the return (the training diagnostics' ray passes).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from mmdet3d.structures.occ3d import NUM_CLASSES

Volume = TypeVar('Volume', np.ndarray, torch.Tensor)


def swap_x_z(volume: Volume, dim: int = 1) -> Volume:
    """(..., Z, Y, X, ...) <-> (..., X, Y, Z, ...) with the three voxel axes from ``dim`` on (its
    own inverse; a view for tensors)."""
    if isinstance(volume, torch.Tensor):
        return volume.transpose(dim, dim + 2)
    return np.swapaxes(volume, dim, dim + 2)


def grid_factors(fine_shape: Sequence[int], coarse_shape: Sequence[int]) -> tuple[int, ...]:
    """Integer per-axis factors from a coarse grid to a fine one.

    Raises:
        ValueError: if a fine size is not a multiple of the coarse one.
    """
    if len(fine_shape) != len(coarse_shape) or any(
            int(f) % int(c) for f, c in zip(fine_shape, coarse_shape)):
        raise ValueError(f'grid {list(fine_shape)} is not a multiple of {list(coarse_shape)}')
    return tuple(int(f) // int(c) for f, c in zip(fine_shape, coarse_shape))


def upsample_nearest(volume: Volume, factors: Sequence[int]) -> Volume:
    """Repeat each cell of a (..., X, Y, Z) array or tensor ``factors`` times per axis."""
    first = volume.ndim - len(factors)
    for offset, factor in enumerate(factors):
        if int(factor) == 1:
            continue
        if isinstance(volume, torch.Tensor):
            volume = volume.repeat_interleave(int(factor), dim=first + offset)
        else:
            volume = np.repeat(volume, int(factor), axis=first + offset)
    return volume


def pool_majority(labels: Volume, factors: Sequence[int],
                  num_classes: int = NUM_CLASSES) -> Volume:
    """Most frequent label of each (fx, fy, fz) block of (..., X, Y, Z) labels.

    Ties go to the smallest label, so the free label (the largest) wins a block only outright.
    The inverse direction of :func:`upsample_nearest`; an array gives an array, a tensor a
    tensor of the input's dtype.

    Returns:
        (..., X / fx, Y / fy, Z / fz) labels.

    Raises:
        ValueError: if the grid is not a multiple of ``factors`` or a label is outside
            [0, num_classes).
    """
    is_array = isinstance(labels, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(labels)) if is_array else labels
    fx, fy, fz = (int(v) for v in factors)
    *lead, sx, sy, sz = tensor.shape
    x, y, z = sx // fx, sy // fy, sz // fz
    if grid_factors((sx, sy, sz), (x, y, z)) != (fx, fy, fz):
        raise ValueError(f'grid {[sx, sy, sz]} is not a multiple of {[fx, fy, fz]}')
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= num_classes):
        raise ValueError(f'labels must lie in [0, {num_classes})')
    n = len(lead)
    blocks = tensor.long().reshape(*lead, x, fx, y, fy, z, fz).permute(
        *range(n), n, n + 2, n + 4, n + 1, n + 3, n + 5).reshape(*lead, x, y, z, fx * fy * fz)
    counts = torch.zeros(*lead, x, y, z, num_classes, dtype=torch.int32, device=tensor.device)
    counts.scatter_add_(-1, blocks, torch.ones_like(blocks, dtype=torch.int32))
    pooled = counts.argmax(-1).to(tensor.dtype)  # the first maximum: the smallest label
    return pooled.numpy() if is_array else pooled


def ray_segment_cells(origins: torch.Tensor,
                      directions: torch.Tensor,
                      lengths: torch.Tensor,
                      pc_range: Sequence[float],
                      grid_size: Sequence[int],
                      near: float = 0.0,
                      step: float | None = None,
                      chunk: int = 4096) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The cells of an (X, Y, Z) grid that ray segments pass through, sampled along each ray.

    A ray covers ``origin + t * direction`` for ``near <= t < length``, sampled at
    ``t = near + step * (k + 1/2)``; a sample inside the grid marks its cell. With the default
    step (a quarter of the smallest cell edge) a ray misses only a cell it clips by less than
    that. Only the samples before each ray's length are formed (no padding to the longest ray).

    Args:
        origins, directions: (R, 3) ray origins (metres, the grid's frame) and unit directions.
        lengths: (R,) segment ends along the directions, metres.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of the grid.
        grid_size: (X, Y, Z) cells.
        near: segment start. Defaults to 0.
        step: sampling step, metres. Defaults to None (a quarter of the smallest cell edge).
        chunk: rays per yielded part (bounds memory). Defaults to 4096.

    Yields:
        per chunk of rays: (n,) int64 ray index (into the R rays) and (n,) int64 flat cell index
        ``(x * Y + y) * Z + z`` of each sample inside the grid (a ray may repeat a cell).
    """
    if not (len(origins) == len(directions) == len(lengths)):
        raise ValueError(f'{len(origins)} origins, {len(directions)} directions and '
                         f'{len(lengths)} lengths differ')
    device, dtype = origins.device, origins.dtype
    lo = torch.tensor(pc_range[:3], dtype=dtype, device=device)
    size = torch.tensor([int(v) for v in grid_size], dtype=torch.long, device=device)
    cell = (torch.tensor(pc_range[3:], dtype=dtype, device=device) - lo) / size
    if step is None:
        step = float(cell.min()) / 4
    if step <= 0:
        raise ValueError(f'step must be positive, got {step}')
    for start in range(0, len(origins), chunk):
        part = slice(start, start + chunk)
        num_steps = torch.ceil((lengths[part] - near) / step).clamp(min=0).long()  # (r,)
        ray_ids = torch.repeat_interleave(torch.arange(len(num_steps), device=device),
                                          num_steps)  # (n,)
        first = torch.cumsum(num_steps, 0) - num_steps  # (r,) offset of each ray's samples
        k = torch.arange(len(ray_ids), device=device) - first[ray_ids]
        t = near + step * (k.to(dtype) + 0.5)  # (n,)
        points = origins[part][ray_ids] + t[:, None] * directions[part][ray_ids]  # (n, 3)
        cells = torch.floor((points - lo) / cell).long()  # (n, 3)
        valid = (t < lengths[part][ray_ids]) & ((cells >= 0) & (cells < size)).all(-1)
        cells = cells[valid]
        yield ray_ids[valid] + start, (cells[:, 0] * size[1] + cells[:, 1]) * size[2] + cells[:, 2]

