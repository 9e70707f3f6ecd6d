"""LSSFPN3D voxel neck: fuse three 3-D encoder scales at the finest one (spec 2.8)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from mmdet3d.models.layers.conv_module import ConvModule
from mmdet3d.registry import MODELS


@MODELS.register_module()
class LSSFPN3D(nn.Module):
    """Trilinear (align_corners=True) x2 / x4 upsampling, concatenation, Conv3d 1x1 + BN + ReLU.

    Key ``conv.{conv,bn}``.

    Args:
        in_channels: channels of the concatenation C1 + C2 + C3.
        out_channels: output channels.
        with_cp: gradient-checkpoint the fusing conv. Defaults to False.
    """

    def __init__(self, in_channels: int, out_channels: int, with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.conv = ConvModule(in_channels, out_channels, kernel_size=1, dims=3)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse three scales.

        Args:
            feats: [(B, C1, Z, Y, X), (B, C2, Z/2, Y/2, X/2), (B, C3, Z/4, Y/4, X/4)].

        Returns:
            (B, out_channels, Z, Y, X).
        """
        x_1, x_2, x_4 = feats
        x_2 = F.interpolate(x_2, scale_factor=2, mode='trilinear', align_corners=True)
        x_4 = F.interpolate(x_4, scale_factor=4, mode='trilinear', align_corners=True)
        x = torch.cat([x_1, x_2, x_4], dim=1)
        if self.with_cp and x.requires_grad and torch.is_grad_enabled():
            return cp.checkpoint(self.conv, x, use_reentrant=False)
        return self.conv(x)
