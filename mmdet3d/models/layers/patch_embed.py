"""Patch embedding: zero-pad to the patch size, strided conv, flatten, LayerNorm."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Split an image into non-overlapping patches and embed each one.

    The input is zero-padded at the bottom/right to a multiple of ``patch_size``. Keys:
    ``projection`` (Conv2d) and ``norm`` (LayerNorm, optional).

    Args:
        in_channels: image channels. Defaults to 3.
        embed_dims: embedding channels C. Defaults to 96.
        patch_size: patch side (= conv kernel = stride). Defaults to 4.
        with_norm: LayerNorm the tokens. Defaults to True.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 with_norm: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(
            in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if with_norm else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """x: (B, C_in, H, W) -> tokens (B, h*w, C) and hw_shape (h, w) = ceil((H, W) / patch)."""
        H, W = x.shape[-2:]
        p = self.patch_size
        x = F.pad(x, (0, (p - W % p) % p, 0, (p - H % p) % p))
        x = self.projection(x)
        hw_shape = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h*w, C)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw_shape
