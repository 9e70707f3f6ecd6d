"""Trilinear lookup of voxel volumes at metric points, one volume per ray (spec 3.4).

Each ray reads only its own volume (slot), so no (V, R, S, 3) re-batched grid is built: the 8
corners are gathered from the flattened volumes. Numerically this is ``F.grid_sample`` (bilinear,
zeros padding) with the original's normalisation n = (p - min) / (max - min) * 2 - 1.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .overlaid_volumes import OverlaidVolumes


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


class _GatherCorners(torch.autograd.Function):
    """out (P, C) = sum_k weights[k, :, None] * flat[linear[k]] over the 8 corners.

    Autograd of eight plain ``index_select`` calls would allocate and add eight volume-sized
    gradients; this backward scatters all corners into one buffer.
    """

    @staticmethod
    def forward(ctx, flat: Tensor, linear: Tensor, weights: Tensor) -> Tensor:
        """flat (N, C), linear (8, P) int, weights (8, P) -> (P, C)."""
        out = flat.new_zeros(linear.shape[1], flat.shape[1])
        for corner in range(linear.shape[0]):
            out += weights[corner][:, None] * flat.index_select(0, linear[corner])
        ctx.save_for_backward(flat, linear, weights)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        """grad_out (P, C) -> grads of flat (N, C) and weights (8, P)."""
        flat, linear, weights = ctx.saved_tensors
        grad_flat = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_flat = torch.zeros_like(flat)
            for corner in range(linear.shape[0]):
                contribution = weights[corner][:, None] * grad_out  # promoted under autocast
                grad_flat.index_add_(0, linear[corner], contribution.to(grad_flat.dtype))
        if ctx.needs_input_grad[2]:
            grad_weights = torch.stack([(flat.index_select(0, lin) * grad_out).sum(dim=-1)
                                        for lin in linear]).to(weights.dtype)
        return grad_flat, None, grad_weights


def trilinear_lookup(volumes: Tensor | OverlaidVolumes,
                     slots: Tensor,
                     points: Tensor,
                     pc_range: Sequence[float] | Tensor,
                     align_corners: bool = True) -> Tensor:
    """Sample each ray's volume at its points, zero outside the grid.

    Differentiable w.r.t. ``volumes`` and ``points``.

    Args:
        volumes: (V, Z, Y, X, C) volumes, e.g. V = B (plain), 2B (static filter) or B*T (flow,
            overlaid: read as the dense tensor they stand for).
        slots: (R,) int volume index of each ray.
        points: (R, S, 3) metric (x, y, z) sample points.
        pc_range: metric extent of every volume, (6,).
        align_corners: lookup convention (see :func:`continuous_voxel_index`). Defaults to True.

    Returns:
        (R, S, C) interpolated values.
    """
    num_volumes, size_z, size_y, size_x, channels = volumes.shape
    num_rays, num_samples, _ = points.shape
    index = continuous_voxel_index(points, pc_range, (size_x, size_y, size_z), align_corners)
    index = index.reshape(-1, 3)  # (R, S, 3) -> (P, 3)
    lower = torch.floor(index)
    frac = torch.stack([(lower + 1) - index, index - lower])  # (2, P, 3) lower/upper weights
    corner = lower.long()[None] + torch.arange(2, device=points.device).view(2, 1, 1)
    sizes = torch.tensor([size_x, size_y, size_z], device=points.device)
    frac = frac * ((corner >= 0) & (corner < sizes))  # zero padding, (2, P, 3)
    corner = torch.minimum(corner.clamp(min=0), sizes - 1)  # any in-range index for weight 0
    # Corner c = dx + 2 dy + 4 dz: (2z, 1, 1, P) x (1, 2y, 1, P) x (1, 1, 2x, P) -> (8, P),
    # multiplied in grid_sample's order (wx * wy) * wz.
    weights = ((frac[None, None, :, :, 0] * frac[None, :, None, :, 1])
               * frac[:, None, None, :, 2]).reshape(8, -1)
    index_dtype = (torch.int32 if num_volumes * size_z * size_y * size_x < 2**31
                   else torch.long)
    corner = corner.to(index_dtype)
    base = slots.to(index_dtype).repeat_interleave(num_samples) * (size_z * size_y * size_x)
    linear = ((corner[:, None, None, :, 2] * size_y + corner[None, :, None, :, 1]) * size_x
              + corner[None, None, :, :, 0] + base).reshape(8, -1)  # (2, 2, 2, P) -> (8, P)
    if isinstance(volumes, OverlaidVolumes):  # virtual voxel -> row of the overlay's table
        flat, linear = volumes.table, volumes.rows[linear]
    else:
        flat = volumes.reshape(-1, channels)  # (V, Z, Y, X, C) -> (V*Z*Y*X, C)
    out = _GatherCorners.apply(flat, linear, weights)  # (P, C)
    return out.view(num_rays, num_samples, channels)  # (P, C) -> (R, S, C)
