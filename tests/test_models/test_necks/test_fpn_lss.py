"""FPN_LSS: checkpoint layout, shapes and the fusion against a direct re-computation."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from mmdet3d.models.necks.fpn_lss import FPN_LSS
from mmdet3d.registry import MODELS


def _neck(in_channels: int, out_channels: int) -> FPN_LSS:
    return MODELS.build(
        dict(type='FPN_LSS', in_channels=in_channels, out_channels=out_channels, scale_factor=2,
             input_feature_index=(0, 1), extra_upsample=None))


def test_state_dict_matches_manifest(golden_dir: Path):
    manifest = json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())
    expected = [(k[len('img_neck.'):], v['shape']) for k, v in manifest['keys'].items()
                if k.startswith('img_neck.')]
    got = [(k, list(v.shape)) for k, v in _neck(1536, 512).state_dict().items()]
    assert got == expected


def test_forward_swin_b_sizes():
    neck = _neck(1536, 512).eval()
    with torch.no_grad():
        out = neck([torch.randn(2, 512, 8, 22), torch.randn(2, 1024, 4, 11)])
    assert out.shape == (2, 512, 8, 22)
    assert (out >= 0).all()


def test_fusion_matches_direct_computation():
    neck = _neck(6, 4).eval()
    with torch.no_grad():
        for m in neck.conv:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    fine, coarse = torch.randn(1, 2, 4, 6), torch.randn(1, 4, 2, 3)
    out = neck([fine, coarse])
    # bilinear align_corners=True x2 from 2 x 3 to 4 x 6, written out per output pixel
    up = torch.empty(1, 4, 4, 6)
    for i in range(4):
        for j in range(6):
            y, x = i * (2 - 1) / (4 - 1), j * (3 - 1) / (6 - 1)
            y0, x0 = min(int(y), 0), min(int(x), 1)
            dy, dx = y - y0, x - x0
            up[0, :, i, j] = (coarse[0, :, y0, x0] * (1 - dy) * (1 - dx)
                              + coarse[0, :, y0 + 1, x0] * dy * (1 - dx)
                              + coarse[0, :, y0, x0 + 1] * (1 - dy) * dx
                              + coarse[0, :, y0 + 1, x0 + 1] * dy * dx)
    x = torch.cat([fine, up], 1)
    for conv, bn in ((neck.conv[0], neck.conv[1]), (neck.conv[3], neck.conv[4])):
        x = F.conv2d(x, conv.weight, padding=1)
        x = (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None]
                                                              + bn.eps)
        x = (x * bn.weight[:, None, None] + bn.bias[:, None, None]).clamp_min(0)
    torch.testing.assert_close(out, x)


def test_extra_upsample():
    neck = FPN_LSS(12, 4, scale_factor=2, input_feature_index=(0, 1), extra_upsample=2).eval()
    with torch.no_grad():
        out = neck([torch.randn(1, 4, 4, 6), torch.randn(1, 8, 2, 3)])
    assert out.shape == (1, 4, 8, 12)
    assert neck.conv[0].out_channels == 8


def test_autocast_bf16():
    neck = _neck(6, 4).train()
    feats = [torch.randn(2, 2, 4, 6), torch.randn(2, 4, 2, 3)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = neck(feats)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and neck.conv[0].weight.grad is not None
