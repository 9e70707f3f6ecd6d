"""BasicBlock, ASPP, the camera vector and the DepthNet's structure and data flow."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmdet3d.models.layers.basic_block import BasicBlock
from mmdet3d.models.view_transformers.aspp import ASPP
from mmdet3d.models.view_transformers.camera_aware import camera_mlp_input
from mmdet3d.models.view_transformers.depth_net import DepthNet
from mmdet3d.models.view_transformers.frustum_geometry import create_frustum


def test_basic_block_residual_and_keys():
    block = BasicBlock(6, 6).eval()
    assert [k for k in block.state_dict() if k.endswith('weight')] == [
        'conv1.weight', 'bn1.weight', 'conv2.weight', 'bn2.weight']
    assert block.conv1.bias is None and block.conv2.bias is None
    x = torch.randn(2, 6, 5, 7)
    nn.init.zeros_(block.conv2.weight)  # residual branch -> bn2(0) = 0 in eval mode
    torch.testing.assert_close(block(x.clone()), x.relu())
    nn.init.zeros_(block.bn2.weight)
    nn.init.constant_(block.bn2.bias, 0.5)  # branch now adds a constant 0.5
    torch.testing.assert_close(block(x.clone()), (x + 0.5).relu())


def test_basic_block_downsample():
    down = nn.Conv2d(10, 6, kernel_size=1)
    block = BasicBlock(10, 6, downsample=down).eval()
    assert 'downsample.weight' in block.state_dict() and 'downsample.bias' in block.state_dict()
    x = torch.randn(1, 10, 4, 4)
    nn.init.zeros_(block.conv2.weight)
    torch.testing.assert_close(block(x), down(x).relu())
    with pytest.raises(ValueError):
        BasicBlock(10, 6)


def test_aspp_shapes_and_kaiming_init():
    torch.manual_seed(0)
    aspp = ASPP(256, 96).eval()
    assert aspp(torch.randn(2, 256, 6, 9)).shape == (2, 256, 6, 9)
    assert aspp.aspp2.atrous_conv.dilation == (6, 6) and aspp.aspp4.atrous_conv.padding == (18, 18)
    # Kaiming normal (fan_in, gain sqrt 2): std sqrt(2 / 480); PyTorch's default would be ~0.026
    std = float(aspp.conv1.weight.detach().std())
    assert abs(std - (2 / 480) ** 0.5) < 0.003
    std = float(aspp.aspp3.atrous_conv.weight.detach().std())
    assert std == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)


def test_camera_mlp_input_order():
    sensor2ego = torch.arange(16.).view(1, 1, 4, 4) + 100
    intrins = torch.tensor([[[[11., 0., 13.], [0., 12., 14.], [0., 0., 1.]]]])
    post_rots = torch.tensor([[[[21., 22., 0.], [24., 25., 0.], [0., 0., 1.]]]])
    post_trans = torch.tensor([[[23., 26., 0.]]])
    bda = torch.tensor([[[31., 32., 0.], [33., 34., 0.], [0., 0., 35.]]])
    out = camera_mlp_input(sensor2ego.expand(1, 2, 4, 4), intrins.expand(1, 2, 3, 3),
                           post_rots.expand(1, 2, 3, 3), post_trans.expand(1, 2, 3), bda)
    expected = torch.tensor([11., 12., 13., 14., 21., 22., 23., 24., 25., 26., 31., 32., 33., 34.,
                             35.] + [100. + i for i in range(12)])
    assert out.shape == (1, 2, 27)
    torch.testing.assert_close(out, expected.expand(1, 2, 27))


def test_mono_depth_net_has_no_stereo_layers():
    net = DepthNet(16, 16, 5, 11, aspp_mid_channels=4).eval()
    keys = net.state_dict().keys()
    assert not any(k.startswith('cost_volumn_net') or 'downsample' in k for k in keys)
    assert net.depth_conv[0].conv1.in_channels == 16
    out = net(torch.randn(2, 16, 3, 4), torch.randn(1, 2, 27))
    assert out.shape == (2, 11 + 5, 3, 4)
    with pytest.raises(NotImplementedError):
        DepthNet(16, 16, 5, 11, use_dcn=True)


def test_stereo_depth_net_cost_volume_without_grad():
    net = DepthNet(16, 16, 5, 11, stereo=True, bias=5.0, aspp_mid_channels=4)
    assert net.depth_conv[0].conv1.in_channels == 16 + 11
    frustum = create_frustum([1.0, 45.0, 4.0], (48, 64), 4)  # (11, 12, 16, 3)
    prev = torch.randn(2, 8, 12, 16, requires_grad=True)
    curr = torch.randn(2, 8, 12, 16, requires_grad=True)
    cams = dict(intrins=torch.tensor([[40., 0., 32.], [0., 40., 24.], [0., 0., 1.]]).expand(
        1, 2, 3, 3), post_rots=torch.eye(3).expand(1, 2, 3, 3), post_trans=torch.zeros(1, 2, 3))
    cost = net.cost_volume(frustum, prev, curr, torch.eye(4).expand(1, 2, 4, 4), **cams,
                           image_size=(48, 64))
    assert cost.shape == (2, 11, 12, 16) and not cost.requires_grad
    torch.testing.assert_close(cost.sum(1), torch.ones(2, 12, 16))
    zeros = net.cost_volume(frustum, None, curr, None, **cams, image_size=(48, 64))
    assert (zeros == 0).all() and zeros.shape == cost.shape
    out = net(torch.randn(2, 16, 3, 4), torch.randn(1, 2, 27), cost)
    assert out.shape == (2, 16, 3, 4)
    out.sum().backward()
    assert net.cost_volumn_net[0].weight.grad.abs().sum() > 0
    assert prev.grad is None and curr.grad is None
    with pytest.raises(ValueError):
        net(torch.randn(2, 16, 3, 4), torch.randn(1, 2, 27))
