"""Swin patch merging in the ``nn.Unfold`` channel order of the BEVDet checkpoints."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchMerging(nn.Module):
    """Merge each s x s group of tokens: unfold, LayerNorm(s*s*C), Linear(s*s*C -> C_out).

    The merged vector is ordered channel-major, index ``c * s*s + kh * s + kw`` (``nn.Unfold``
    order), not the official/timm ``k * C + c``; the ``norm`` and ``reduction`` weights of the
    BEVDet checkpoints are laid out for this order. Maps with an odd side are zero-padded at the
    bottom/right first.

    Args:
        in_channels: token channels C.
        out_channels: merged channels C_out.
        stride: merge factor s (kernel = stride). Defaults to 2.
        with_norm: LayerNorm before the reduction. Defaults to True.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 2,
                 with_norm: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.sampler = nn.Unfold(kernel_size=stride, stride=stride)
        merged = stride * stride * in_channels
        self.norm = nn.LayerNorm(merged) if with_norm else None
        self.reduction = nn.Linear(merged, out_channels, bias=False)

    def forward(self, x: torch.Tensor,
                hw_shape: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        """x: (B, H*W, C) -> (B, H'*W', C_out) and (H', W') = ceil((H, W) / s)."""
        B, L, C = x.shape
        H, W = hw_shape
        if L != H * W:
            raise ValueError(f'{L} tokens do not form a {H}x{W} map')
        s = self.stride
        x = x.view(B, H, W, C).permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        x = F.pad(x, (0, (s - W % s) % s, 0, (s - H % s) % s))
        out_hw = (x.shape[2] // s, x.shape[3] // s)
        x = self.sampler(x).transpose(1, 2)  # (B, C*s*s, H'*W') -> (B, H'*W', C*s*s)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), out_hw
