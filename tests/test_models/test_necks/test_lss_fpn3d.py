"""LSSFPN3D: checkpoint layout, shapes, fusion against a direct re-computation, cp, bf16."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.necks.lss_fpn3d import LSSFPN3D
from mmdet3d.registry import MODELS


def test_state_dict_matches_manifest(golden_dir: Path):
    manifest = json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())
    prefix = 'img_bev_encoder_neck.'
    expected = [(k[len(prefix):], v['shape']) for k, v in manifest['keys'].items()
                if k.startswith(prefix)]
    neck = MODELS.build(dict(type='LSSFPN3D', in_channels=224, out_channels=32))
    assert [(k, list(v.shape)) for k, v in neck.state_dict().items()] == expected


def test_forward_shapes_full_channels():
    neck = LSSFPN3D(224, 32).eval()
    feats = [torch.randn(1, 32, 4, 16, 16), torch.randn(1, 64, 2, 8, 8),
             torch.randn(1, 128, 1, 4, 4)]
    with torch.no_grad():
        assert neck(feats).shape == (1, 32, 4, 16, 16)


def test_fusion_matches_direct_computation():
    torch.manual_seed(3)
    neck = LSSFPN3D(3, 2).eval()
    with torch.no_grad():
        neck.conv.bn.running_mean.normal_()
        neck.conv.bn.running_var.uniform_(0.5, 2.0)
        neck.conv.bn.bias.normal_()
    s1, s2 = torch.randn(1, 1, 4, 4, 4), torch.randn(1, 1, 2, 2, 2)
    s4 = torch.randn(1, 1, 1, 1, 1)
    out = neck([s1, s2, s4])
    # align_corners=True x2 from 2 to 4 samples: positions 0, 1/3, 2/3, 1 between the two inputs
    t = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    w = torch.stack([1 - t, t])  # (2 in, 4 out)
    up2 = torch.einsum('abc,ai,bj,ck->ijk', s2[0, 0], w, w, w)
    up4 = s4[0, 0].expand(4, 4, 4)  # a single voxel upsamples to a constant
    x = torch.stack([s1[0, 0], up2, up4])[None]
    bn = neck.conv.bn
    y = F.conv3d(x, neck.conv.conv.weight)
    y = (y - bn.running_mean.view(1, -1, 1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, -1, 1, 1, 1) + bn.eps)
    y = (y * bn.weight.view(1, -1, 1, 1, 1) + bn.bias.view(1, -1, 1, 1, 1)).clamp_min(0)
    torch.testing.assert_close(out, y)


def test_gradient_checkpointing_identical():
    ref, ckp = LSSFPN3D(6, 4), LSSFPN3D(6, 4, with_cp=True)
    ckp.load_state_dict(ref.state_dict())
    feats = [torch.randn(2, 2, 4, 4, 4), torch.randn(2, 2, 2, 2, 2), torch.randn(2, 2, 1, 1, 1)]
    grads = []
    for model in (ref, ckp):
        inputs = [f.clone().requires_grad_() for f in feats]
        out = model(inputs)
        out.square().sum().backward()
        grads.append((out.detach(), [i.grad for i in inputs], model.conv.conv.weight.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=0)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grads[0][2], grads[1][2])


def test_autocast_bf16():
    neck = LSSFPN3D(6, 4)
    feats = [torch.randn(2, 2, 4, 4, 4), torch.randn(2, 2, 2, 2, 2), torch.randn(2, 2, 1, 1, 1)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = neck(feats)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and neck.conv.conv.weight.grad is not None


def test_projection_before_upsampling_equals_the_original_order():
    """Output and every gradient equal convolving the upsampled concatenation (train mode)."""
    torch.manual_seed(0)
    neck = LSSFPN3D(4 + 6 + 8, 5).train()
    feats = [torch.randn(2, 4, 8, 12, 12), torch.randn(2, 6, 4, 6, 6), torch.randn(2, 8, 2, 3, 3)]
    upstream = torch.randn(2, 5, 8, 12, 12)
    results = []
    for fused in (True, False):
        inputs = [f.clone().requires_grad_() for f in feats]
        neck.zero_grad()
        if fused:
            out = neck(inputs)
        else:
            x = torch.cat([inputs[0],
                           F.interpolate(inputs[1], scale_factor=2, mode='trilinear',
                                         align_corners=True),
                           F.interpolate(inputs[2], scale_factor=4, mode='trilinear',
                                         align_corners=True)], dim=1)
            out = neck.conv(x)
        (out * upstream).sum().backward()
        results.append([out.detach(), *(i.grad for i in inputs),
                        neck.conv.conv.weight.grad.clone(), neck.conv.bn.weight.grad.clone()])
    for fused, direct in zip(*results):
        torch.testing.assert_close(fused, direct, rtol=1e-5, atol=1e-5)


def test_channel_mismatch_is_refused():
    neck = LSSFPN3D(6, 4)
    feats = [torch.randn(1, 2, 4, 4, 4), torch.randn(1, 2, 2, 2, 2), torch.randn(1, 3, 1, 1, 1)]
    with pytest.raises(ValueError, match='do not sum to in_channels 6'):
        neck(feats)
