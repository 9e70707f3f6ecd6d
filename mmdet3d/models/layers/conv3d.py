"""``nn.Conv3d`` that keeps single-sample CPU batches on oneDNN."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: PyTorch (ATen ``ConvParams::use_mkldnn``) runs a CPU float32 convolution of batch 1 on its
#: native kernel when N * C * D * H of the input is at most this; for Conv3d that is
#: ``slow_conv3d``, several times slower than oneDNN.
NATIVE_KERNEL_MAX_ELEMENTS = 20480


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and state dict) with a faster CPU path for batch 1.

    A CPU float32 input of one sample that PyTorch would send to ``slow_conv3d`` (N * C * D * H
    <= 20480, kernel not 1x1x1, stride 1, one group) is convolved together with a zero sample,
    which makes PyTorch choose oneDNN for the forward and the backward; the zero sample's output
    is dropped. Output and gradients are those of ``nn.Conv3d``. Strided convolutions keep the
    native kernel: their output is small and there it was faster than the pair.
    ``tools/benchmarks/bench_conv3d.py`` measures both.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self._pair_with_zero_sample(input):
            pair = torch.cat([input, input.new_zeros(input.shape)])
            return super()._conv_forward(pair, weight, bias)[:1]
        return super()._conv_forward(input, weight, bias)

    def _pair_with_zero_sample(self, input: Tensor) -> bool:
        return (input.dim() == 5 and input.shape[0] == 1 and input.device.type == 'cpu'
                and input.dtype == torch.float32 and self.groups == 1
                and self.kernel_size != (1, 1, 1) and self.stride == (1, 1, 1)
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
                and math.prod(input.shape[:4]) <= NATIVE_KERNEL_MAX_ELEMENTS)
