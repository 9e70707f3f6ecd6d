"""3-D residual basic block with an optional downsample branch (spec 2.8)."""
from __future__ import annotations

import torch
from torch import nn

from mmdet3d.models.layers.conv_module import ConvModule


class BasicBlock3D(nn.Module):
    """Conv3d-BN-ReLU, Conv3d-BN, add the (downsampled) identity, ReLU.

    Keys ``conv1.{conv,bn}``, ``conv2.{conv,bn}`` and ``downsample.{conv,bn}``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of ``conv1`` (and of the downsample branch). Defaults to 1.
        with_downsample: add the Conv3d 3x3x3 + BN3d identity branch (the original creates it
            for the first block of every stage, even when shapes match). Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 with_downsample: bool = False) -> None:
        super().__init__()
        if not with_downsample and (stride != 1 or in_channels != out_channels):
            raise ValueError('a block that changes shape needs with_downsample=True')
        self.conv1 = ConvModule(
            in_channels, out_channels, kernel_size=3, stride=stride, padding=1, dims=3)
        self.conv2 = ConvModule(
            out_channels, out_channels, kernel_size=3, padding=1, dims=3, with_act=False)
        self.downsample = None
        if with_downsample:
            self.downsample = ConvModule(
                in_channels,
                out_channels,
                kernel_size=3,
                stride=stride,
                padding=1,
                dims=3,
                with_act=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, Z, Y, X) -> (B, C_out, Z', Y', X'), spatial / stride (rounded up)."""
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)
