"""Stochastic depth (DropPath): drops whole residual branches per sample."""
from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the input of a residual branch per sample with probability ``drop_prob``.

    Kept samples are scaled by ``1 / (1 - drop_prob)`` so the expectation is unchanged. Identity
    in eval mode or when ``drop_prob == 0``.

    Args:
        drop_prob: probability of dropping a sample's branch. Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f'drop_prob must be in [0, 1), got {drop_prob}')
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, ...) -> (B, ...), same shape."""
        if not self.training or self.drop_prob == 0.0:
            return x
        keep_prob = 1.0 - self.drop_prob
        mask_shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        keep = (keep_prob + torch.rand(mask_shape, dtype=x.dtype, device=x.device)).floor()
        return x.div(keep_prob) * keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'
