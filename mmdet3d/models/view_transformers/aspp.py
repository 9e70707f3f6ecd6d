"""Atrous spatial pyramid pooling as used at the end of the DepthNet (spec 2.7.2, step 8)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal (fan_in, gain sqrt(2)) for every conv; BN weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ASPPBranch(nn.Module):
    """Dilated conv (no bias, ``atrous_conv``) -> BN (``bn``) -> ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: 1 or 3.
        dilation: dilation; the padding equals it for 3x3 kernels and is 0 for 1x1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int) -> None:
        super().__init__()
        padding = 0 if kernel_size == 1 else dilation
        self.atrous_conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            padding=padding,
            dilation=dilation,
            bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        _kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H, W)."""
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    """Four atrous branches (1x1; 3x3 at dilations 6, 12, 18) plus image pooling, fused by 1x1.

    Keys ``aspp{1..4}.{atrous_conv,bn}``, ``global_avg_pool.{1,2}``, ``conv1``, ``bn1``. All convs
    get Kaiming-normal init (spec 2.12).

    Args:
        in_channels: input (and output) channels.
        mid_channels: channels of each of the 5 branches. Defaults to 256.
    """

    def __init__(self, in_channels: int, mid_channels: int = 256) -> None:
        super().__init__()
        self.aspp1 = ASPPBranch(in_channels, mid_channels, kernel_size=1, dilation=1)
        self.aspp2 = ASPPBranch(in_channels, mid_channels, kernel_size=3, dilation=6)
        self.aspp3 = ASPPBranch(in_channels, mid_channels, kernel_size=3, dilation=12)
        self.aspp4 = ASPPBranch(in_channels, mid_channels, kernel_size=3, dilation=18)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(),
        )
        self.conv1 = nn.Conv2d(5 * mid_channels, in_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        _kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        branches = [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)]
        pooled = self.global_avg_pool(x)  # (B, mid, 1, 1)
        branches.append(
            F.interpolate(pooled, size=x.shape[2:], mode='bilinear', align_corners=True))
        x = torch.cat(branches, dim=1)  # (B, 5 * mid, H, W)
        return self.dropout(self.relu(self.bn1(self.conv1(x))))
