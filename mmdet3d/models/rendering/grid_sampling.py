"""Trilinear lookup of voxel volumes at metric points, one volume per ray (spec 3.4).

Each ray reads only its own volume (slot), so no (V, R, S, 3) re-batched grid is built: the 8
corners are gathered from the flattened volumes. Numerically this is ``F.grid_sample`` (bilinear,
zeros padding) with the original's normalisation n = (p - min) / (max - min) * 2 - 1.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def continuous_voxel_index(points: Tensor,
                           pc_range: Sequence[float] | Tensor,
                           grid_size: Sequence[int],
                           align_corners: bool = True) -> Tensor:
    """Metric points to continuous voxel indices, as ``grid_sample`` unnormalises them.

    align_corners=True (original, quirk 3) puts pc_range's borders on the first/last voxel
    centres: i = (n + 1) / 2 * (size - 1). align_corners=False is the cell-aligned fix:
    i = ((n + 1) * size - 1) / 2 = (p - min) / voxel - 0.5.

    Args:
        points: (..., 3) metric (x, y, z), ego frame, metres.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max), metres.
        grid_size: (X, Y, Z) voxels.
        align_corners: convention. Defaults to True.

    Returns:
        (..., 3) continuous (x, y, z) indices; integer values are voxel centres.
    """
    pc_range = torch.as_tensor(pc_range, dtype=points.dtype, device=points.device)
    size = torch.as_tensor(grid_size, dtype=points.dtype, device=points.device)
    normalised = (points - pc_range[:3]) / (pc_range[3:] - pc_range[:3]) * 2 - 1
    if align_corners:
        return (normalised + 1) / 2 * (size - 1)
    return ((normalised + 1) * size - 1) / 2


def trilinear_lookup(volumes: Tensor,
                     slots: Tensor,
                     points: Tensor,
                     pc_range: Sequence[float] | Tensor,
                     align_corners: bool = True) -> Tensor:
    """Sample each ray's volume at its points, zero outside the grid.

    Differentiable w.r.t. ``volumes`` and ``points``.

    Args:
        volumes: (V, Z, Y, X, C) volumes, e.g. V = B (plain), 2B (static filter) or B*T (flow).
        slots: (R,) int volume index of each ray.
        points: (R, S, 3) metric (x, y, z) sample points.
        pc_range: metric extent of every volume, (6,).
        align_corners: lookup convention (see :func:`continuous_voxel_index`). Defaults to True.

    Returns:
        (R, S, C) interpolated values.
    """
    num_vol, size_z, size_y, size_x, channels = volumes.shape
    num_rays, num_samples, _ = points.shape
    index = continuous_voxel_index(points, pc_range, (size_x, size_y, size_z), align_corners)
    lower = torch.floor(index)
    frac_hi = index - lower  # weight of the upper corner, (R, S, 3)
    frac_lo = (lower + 1) - index  # weight of the lower corner
    lower = lower.long()
    limits = torch.tensor([size_x, size_y, size_z], device=points.device)
    flat = volumes.reshape(-1, channels)  # (V, Z, Y, X, C) -> (V*Z*Y*X, C)
    base = slots.long().view(num_rays, 1) * (size_z * size_y * size_x)  # (R, 1)
    out = points.new_zeros(num_rays * num_samples, channels)
    for corner in range(8):
        offset = torch.tensor([corner & 1, (corner >> 1) & 1, corner >> 2], device=points.device)
        idx = lower + offset  # (R, S, 3)
        valid = ((idx >= 0) & (idx < limits)).all(dim=-1)  # (R, S)
        weight = torch.where(offset.bool(), frac_hi, frac_lo).prod(dim=-1) * valid  # (R, S)
        idx = torch.where(valid[..., None], idx, torch.zeros_like(idx))
        linear = base + (idx[..., 2] * size_y + idx[..., 1]) * size_x + idx[..., 0]  # (R, S)
        values = flat.index_select(0, linear.reshape(-1))  # (R*S, C)
        out = out + weight.reshape(-1, 1) * values
    return out.view(num_rays, num_samples, channels)  # (R*S, C) -> (R, S, C)
