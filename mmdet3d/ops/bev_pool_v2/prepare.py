"""Rank and interval pre-computation for ``bev_pool_v2`` (``voxel_pooling_prepare_v2``)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

PoolingRanks = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def voxel_pooling_prepare_v2(coor: Tensor, grid_lower: Sequence[float] | Tensor,
                             grid_interval: Sequence[float] | Tensor,
                             grid_size: Sequence[int] | Tensor,
                             truncate: bool = True) -> PoolingRanks | None:
    """Map frustum points to voxels and group them by voxel for :func:`bev_pool_v2`.

    The voxel coordinate of a point is ``(p - grid_lower) / grid_interval`` (computed in the dtype
    of ``coor``), converted to an integer by truncation toward zero as in the original
    (``truncate=True``, quirk 10.1.4: points up to one voxel below the lower bound land in voxel 0)
    or by floor (``truncate=False``). Points outside ``[0, grid_size)`` are dropped. The kept
    points are sorted (stably) by their BEV rank ``b*Z*Y*X + z*Y*X + y*X + x``.

    Args:
        coor: (B, N, D, H, W, 3) frustum points (x, y, z) in metres in the voxel grid's frame.
        grid_lower: (3,) lower bound (x, y, z) of the grid in metres.
        grid_interval: (3,) voxel size (x, y, z) in metres.
        grid_size: (3,) number of voxels (X, Y, Z).
        truncate: truncate toward zero (original behaviour) instead of flooring. Defaults to True.

    Returns:
        ``(ranks_bev, ranks_depth, ranks_feat, interval_starts, interval_lengths)``, all int32
        and contiguous: the first three (P,) per kept point (flat indices into the (B, Z, Y, X)
        grid, into ``depth`` (B, N, D, H, W) and into the rows of ``feat`` (B*N*H*W, C)); the last
        two (I,) describe the runs of equal ``ranks_bev``. None when no point is inside the grid.
    """
    if coor.dim() != 6 or coor.shape[-1] != 3:
        raise ValueError(f'coor must have shape (B, N, D, H, W, 3), got {tuple(coor.shape)}')
    if not coor.is_floating_point():
        raise ValueError(f'coor must be a floating-point tensor, got {coor.dtype}')
    batch, cams, bins, height, width, _ = coor.shape
    device = coor.device
    lower = torch.as_tensor(grid_lower, dtype=coor.dtype, device=device)
    interval = torch.as_tensor(grid_interval, dtype=coor.dtype, device=device)
    size = torch.as_tensor(grid_size, device=device).round().long()
    if lower.shape != (3,) or interval.shape != (3,) or size.shape != (3,):
        raise ValueError('grid_lower, grid_interval and grid_size must each have 3 entries')
    size_x, size_y, size_z = (int(s) for s in size)
    if size_x * size_y * size_z * batch >= 2**31:
        raise ValueError('the (B, Z, Y, X) grid is too large for int32 ranks')

    scaled = (coor.reshape(-1, 3) - lower) / interval  # (B*N*D*H*W, 3) in voxel units
    voxel = scaled.long() if truncate else scaled.floor().long()
    kept = ((voxel >= 0) & (voxel < size)).all(dim=1)  # (B*N*D*H*W,)
    point_idx = kept.nonzero().squeeze(1)  # (P,) flat index into (B, N, D, H, W)
    if point_idx.numel() == 0:
        return None
    voxel = voxel[point_idx]
    points_per_sample = cams * bins * height * width
    batch_idx = point_idx // points_per_sample
    ranks_bev = (((batch_idx * size_z + voxel[:, 2]) * size_y + voxel[:, 1]) * size_x
                 + voxel[:, 0])
    # flat (b, n, d, h, w) -> flat (b, n, h, w): drop the depth digit
    pixel = point_idx % (height * width)
    camera = point_idx // (bins * height * width)
    ranks_feat = camera * (height * width) + pixel
    ranks_bev, order = torch.sort(ranks_bev, stable=True)
    ranks_depth = point_idx[order]
    ranks_feat = ranks_feat[order]

    is_start = torch.ones_like(ranks_bev, dtype=torch.bool)
    is_start[1:] = ranks_bev[1:] != ranks_bev[:-1]
    interval_starts = is_start.nonzero().squeeze(1)
    ends = torch.cat([interval_starts[1:], interval_starts.new_tensor([ranks_bev.numel()])])
    interval_lengths = ends - interval_starts
    return tuple(t.int().contiguous() for t in
                 (ranks_bev, ranks_depth, ranks_feat, interval_starts, interval_lengths))
