"""Conv3d: same results as nn.Conv3d; one CPU sample runs on oneDNN instead of slow_conv3d."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmdet3d.models.layers.conv3d import Conv3d


def _kernels(module: nn.Module, x: torch.Tensor) -> set[str]:
    """ATen convolution kernels that run in forward + backward."""
    with torch.profiler.profile() as prof:
        module(x).square().sum().backward()
    return {e.key for e in prof.key_averages()
            if e.key in ('aten::slow_conv3d_forward', 'aten::mkldnn_convolution')}


@pytest.mark.parametrize('shape, kwargs', [
    ((1, 16, 16, 40, 40), dict(kernel_size=3, padding=1, bias=False)),
    ((1, 4, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1, bias=True)),
    ((2, 4, 5, 6, 7), dict(kernel_size=3, padding=1, bias=True)),
    ((1, 4, 5, 6, 7), dict(kernel_size=1, bias=True)),
])
def test_matches_nn_conv3d_with_gradients(shape, kwargs):
    torch.manual_seed(0)
    in_channels = shape[1]
    ours, plain = Conv3d(in_channels, 8, **kwargs), nn.Conv3d(in_channels, 8, **kwargs)
    plain.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(plain.state_dict())
    x = torch.randn(shape)
    outs, grads = [], []
    for module in (ours, plain):
        xi = x.clone().requires_grad_(True)
        out = module(xi)
        out.square().sum().backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in module.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-4)
    for ours_grad, plain_grad in zip(*grads):
        torch.testing.assert_close(ours_grad, plain_grad, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='needs oneDNN')
def test_single_small_sample_runs_on_onednn():
    x = torch.randn(1, 16, 16, 40, 40, requires_grad=True)  # N * C * D * H = 10240
    assert _kernels(nn.Conv3d(16, 16, 3, padding=1), x) == {'aten::slow_conv3d_forward'}
    assert _kernels(Conv3d(16, 16, 3, padding=1), x) == {'aten::mkldnn_convolution'}
    # strided convolutions keep PyTorch's kernel (their output is small; pairing was not faster)
    strided = Conv3d(16, 16, 3, stride=2, padding=1)
    assert _kernels(strided, x) == {'aten::slow_conv3d_forward'}
