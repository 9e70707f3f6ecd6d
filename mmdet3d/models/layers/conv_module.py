"""Conv -> BatchNorm -> ReLU block with mmcv ``ConvModule`` parameter names and init."""
from __future__ import annotations

import torch
from torch import nn

from mmdet3d.models.layers.conv3d import Conv3d

_CONV = {2: nn.Conv2d, 3: Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class ConvModule(nn.Module):
    """Convolution with optional BatchNorm (``bn``) and ReLU (``activate``).

    State-dict keys are ``conv.weight`` (``conv.bias``) and ``bn.*``, as mmcv's ConvModule emits
    them for BN norms, so checkpoints of the original load unchanged. The weights are initialised
    at construction like mmcv: Kaiming-normal (fan_out, ReLU gain) conv weight, zero conv bias, BN
    weight 1 and bias 0.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: convolution kernel size.
        stride: convolution stride. Defaults to 1.
        padding: zero padding. Defaults to 0.
        dims: 2 for ``Conv2d``/``BatchNorm2d``, 3 for ``Conv3d`` (:class:`.conv3d.Conv3d`, with its
            fast path for one CPU sample)/``BatchNorm3d``. Defaults to 2.
        with_norm: add BatchNorm after the conv. Defaults to True.
        with_act: add an in-place ReLU at the end. Defaults to True.
        bias: conv bias; ``None`` means "no bias iff a norm follows" (mmcv's 'auto').
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 dims: int = 2,
                 with_norm: bool = True,
                 with_act: bool = True,
                 bias: bool | None = None) -> None:
        super().__init__()
        if dims not in _CONV:
            raise ValueError(f'dims must be 2 or 3, got {dims}')
        bias = not with_norm if bias is None else bias
        self.conv = _CONV[dims](
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.bn = _NORM[dims](out_channels) if with_norm else None
        self.activate = nn.ReLU(inplace=True) if with_act else None
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal conv (fan_out, ReLU), zero bias; BN weight 1, bias 0."""
        nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        if self.bn is not None:
            nn.init.ones_(self.bn.weight)
            nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, *spatial) -> (B, C_out, *spatial / stride)."""
        return self.norm_and_activate(self.conv(x))

    def norm_and_activate(self, x: torch.Tensor) -> torch.Tensor:
        """The block after its convolution: BatchNorm and ReLU where configured."""
        if self.bn is not None:
            x = self.bn(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
