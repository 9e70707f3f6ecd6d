"""Pure-PyTorch ``bev_pool_v2``: the test oracle and the fallback when the extension is absent."""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor


def bev_pool_v2_reference(depth: Tensor, feat: Tensor, ranks_depth: Tensor,
                          ranks_feat: Tensor, ranks_bev: Tensor,
                          bev_feat_shape: Sequence[int]) -> Tensor:
    """Sum ``depth * feat`` of every kept frustum point into its voxel (gather, multiply, index_add).

    Differentiable by autograd with respect to ``depth`` and ``feat``. The interval arrays of the
    compiled op are a scheduling detail and are not needed here; the ranks need not be sorted.

    Args:
        depth: (B, N, D, H, W) depth probabilities.
        feat: (B, N, H, W, C) context features, channels last.
        ranks_depth: (P,) integer flat indices into ``depth``.
        ranks_feat: (P,) integer flat indices into the rows of ``feat`` viewed as (B*N*H*W, C).
        ranks_bev: (P,) integer flat indices into the (B, Z, Y, X) output grid.
        bev_feat_shape: (B, Z, Y, X, C).

    Returns:
        (B, C, Z, Y, X) pooled features, in the dtype of ``depth * feat``.
    """
    num_channels = feat.shape[-1]
    weights = depth.reshape(-1)[ranks_depth.long()]  # (P,)
    rows = feat.reshape(-1, num_channels)[ranks_feat.long()]  # (P, C)
    values = weights[:, None] * rows  # (P, C)
    out = values.new_zeros(math.prod(bev_feat_shape[:-1]), num_channels)  # (B*Z*Y*X, C)
    out.index_add_(0, ranks_bev.long(), values)
    # (B, Z, Y, X, C) -> (B, C, Z, Y, X)
    return out.view(*bev_feat_shape).permute(0, 4, 1, 2, 3).contiguous()
