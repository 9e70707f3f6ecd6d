"""FPN_LSS image neck: fuse two backbone scales into one feature map (spec 2.6)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class FPN_LSS(nn.Module):  # noqa: N801 (the original type name, kept for configs)
    """Upsample the coarse map, concatenate with the fine one, two 3x3 Conv-BN-ReLU.

    Keys ``conv.{0,1,3,4}`` (and ``up2.{1,2,4}`` with ``extra_upsample``), plain PyTorch layers
    with PyTorch's default initialisation, as in the original.

    Args:
        in_channels: channels of the concatenation (fine + coarse).
        out_channels: output channels.
        scale_factor: bilinear (align_corners=True) upsampling of the coarse map. Defaults to 4.
        input_feature_index: indices of the (fine, coarse) maps in the input list.
            Defaults to (0, 2).
        extra_upsample: if set, a final bilinear upsampling by this factor followed by
            Conv3x3-BN-ReLU and a 1x1 conv (the fused convs then have 2 * out_channels).
            Defaults to 2.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factor: float = 4,
                 input_feature_index: Sequence[int] = (0, 2),
                 extra_upsample: float | None = 2) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.input_feature_index = tuple(input_feature_index)
        mid = out_channels * (2 if extra_upsample else 1)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True))
        self.up2 = None
        if extra_upsample:
            self.up2 = nn.Sequential(
                nn.Upsample(scale_factor=extra_upsample, mode='bilinear', align_corners=True),
                nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, kernel_size=1))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse two scales.

        Args:
            feats: backbone maps; ``feats[i0]`` is (B, C_f, H, W) and ``feats[i1]`` is
                (B, C_c, H / scale_factor, W / scale_factor), C_f + C_c = in_channels.

        Returns:
            (B, out_channels, H, W), or (B, out_channels, H * e, W * e) with extra_upsample e.
        """
        fine, coarse = feats[self.input_feature_index[0]], feats[self.input_feature_index[1]]
        coarse = F.interpolate(
            coarse, scale_factor=self.scale_factor, mode='bilinear', align_corners=True)
        x = self.conv(torch.cat([fine, coarse], dim=1))
        if self.up2 is not None:
            x = self.up2(x)
        return x
