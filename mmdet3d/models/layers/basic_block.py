"""2-D residual basic block with mmdet's ``BasicBlock`` layout (DepthNet, spec 2.7.2)."""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, add the (downsampled) identity, ReLU.

    Keys ``conv1.weight``, ``bn1.*``, ``conv2.weight``, ``bn2.*`` and ``downsample.*`` (whatever
    module is passed), as mmdet's ``BasicBlock`` emits them. The convs have no bias and keep
    PyTorch's default initialisation (mmdet's block has no init_cfg).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of ``conv1``. Defaults to 1.
        dilation: dilation (and padding) of ``conv1``. Defaults to 1.
        downsample: module mapping the input to the output's shape for the residual sum; required
            when the block changes the channels or the resolution. Defaults to None (identity).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        if downsample is None and (stride != 1 or in_channels != out_channels):
            raise ValueError('a block that changes the shape needs a downsample module')
        self.conv1 = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
