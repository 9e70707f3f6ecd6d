"""CustomResNet3D / BasicBlock3D: checkpoint layout, shapes, block maths, init, cp, bf16."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.layers.basic_block3d import BasicBlock3D
from mmdet3d.models.occ_encoders.resnet3d import CustomResNet3D
from mmdet3d.registry import MODELS

PRE_PROCESS = dict(type='CustomResNet3D', numC_input=32, num_layer=[1], num_channels=[32],
                   stride=[1], backbone_output_ids=[0])
BEV_BACKBONE = dict(type='CustomResNet3D', numC_input=64, num_layer=[1, 2, 4],
                    num_channels=[32, 64, 128], stride=[1, 2, 2], backbone_output_ids=[0, 1, 2])


@pytest.mark.parametrize('cfg,prefix', [(PRE_PROCESS, 'pre_process_net.'),
                                        (BEV_BACKBONE, 'img_bev_encoder_backbone.')])
def test_state_dict_matches_manifest(cfg: dict, prefix: str, golden_dir: Path):
    manifest = json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())
    expected = [(k[len(prefix):], v['shape']) for k, v in manifest['keys'].items()
                if k.startswith(prefix)]
    model = MODELS.build(cfg)
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected


def test_forward_shapes_full_channels():
    pre, backbone = MODELS.build(PRE_PROCESS).eval(), MODELS.build(BEV_BACKBONE).eval()
    with torch.no_grad():
        (pre_out, ) = pre(torch.randn(1, 32, 4, 16, 16))
        s1, s2, s3 = backbone(torch.randn(1, 64, 4, 16, 16))
    assert pre_out.shape == (1, 32, 4, 16, 16)
    assert s1.shape == (1, 32, 4, 16, 16)
    assert s2.shape == (1, 64, 2, 8, 8)
    assert s3.shape == (1, 128, 1, 4, 4)


def test_default_channels_and_output_ids():
    model = CustomResNet3D(4, num_layer=[1, 1], stride=[1, 2], backbone_output_ids=[1]).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 4, 4, 4, 4))
    assert len(outs) == 1 and outs[0].shape == (1, 16, 2, 2, 2)


def _bn(x: torch.Tensor, bn: torch.nn.BatchNorm3d) -> torch.Tensor:
    shape = (1, -1, 1, 1, 1)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def test_basic_block_matches_direct_computation():
    """relu(BN(conv2(relu(BN(conv1 x)))) + BN(down x)); the branch exists even at stride 1."""
    torch.manual_seed(2)
    block = BasicBlock3D(3, 3, stride=1, with_downsample=True).eval()
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    x = torch.randn(2, 3, 4, 5, 6)
    y = F.relu(_bn(F.conv3d(x, block.conv1.conv.weight, padding=1), block.conv1.bn))
    y = _bn(F.conv3d(y, block.conv2.conv.weight, padding=1), block.conv2.bn)
    identity = _bn(F.conv3d(x, block.downsample.conv.weight, padding=1), block.downsample.bn)
    torch.testing.assert_close(block(x), F.relu(y + identity))


def test_block_without_downsample_rejects_shape_change():
    with pytest.raises(ValueError):
        BasicBlock3D(4, 8)


def test_conv_module_init_kaiming_fan_out():
    model = MODELS.build(BEV_BACKBONE)
    conv = model.layers[2][1].conv1
    fan_out = 128 * 27
    assert conv.conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
    assert conv.conv.bias is None
    assert torch.equal(conv.bn.weight, torch.ones(128))
    assert torch.equal(conv.bn.bias, torch.zeros(128))


def test_gradient_checkpointing_identical():
    cfg = dict(numC_input=4, num_layer=[1, 2], num_channels=[4, 8], stride=[1, 2])
    ref, ckp = CustomResNet3D(**cfg), CustomResNet3D(**cfg, with_cp=True)
    ckp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 4, 8, 8)
    results = []
    for model in (ref, ckp):
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum(o.square().sum() for o in outs).backward()
        results.append(([o.detach() for o in outs], xi.grad,
                        {n: p.grad for n, p in model.named_parameters()}))
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1])
    for name, grad in results[0][2].items():
        torch.testing.assert_close(results[1][2][name], grad)


def test_autocast_bf16():
    model = CustomResNet3D(4, num_layer=[1, 1], num_channels=[4, 8], stride=[1, 2])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.randn(2, 4, 4, 8, 8))
    sum(o.float().sum() for o in outs).backward()
    assert all(torch.isfinite(o).all() for o in outs)
    assert model.layers[0][0].conv1.conv.weight.grad is not None
