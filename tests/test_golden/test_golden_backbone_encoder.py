"""Golden: the tiny original model's Swin, FPN_LSS, CustomResNet3Ds and LSSFPN3D, module by module.

Weights are the prefix-stripped sub-dicts of ``tiny_model_state_dict.pt`` loaded strictly; every
module gets the recorded input of its original counterpart and must reproduce the recorded output
within the README's tolerance (image and voxel features: atol = rtol = 1e-4).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmdet3d.models.backbones.swin import SwinTransformer
from mmdet3d.models.necks.fpn_lss import FPN_LSS
from mmdet3d.models.necks.lss_fpn3d import LSSFPN3D
from mmdet3d.models.occ_encoders.resnet3d import CustomResNet3D

TOL = dict(rtol=1e-4, atol=1e-4)
CASES = ('c0', 'c1')
# camera-major images [cam0 t, cam0 t-1, cam0 t-2, cam1 t, cam1 t-1, cam1 t-2]
FRAME_IMAGES = {'t': [0, 3], 'tm1': [1, 4], 'tm2': [2, 5]}


@pytest.fixture(scope='module')
def golden(golden_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    state = torch.load(golden_dir / 'tiny_model_state_dict.pt', weights_only=True)
    with np.load(golden_dir / 'tiny_model_forward.npz') as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    return state, arrays


def _load(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> nn.Module:
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    module.load_state_dict(sub, strict=True)
    return module.eval()


@torch.no_grad()
def test_swin_and_fpn_lss(golden):
    state, g = golden
    swin = _load(
        SwinTransformer(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                        window_size=4, mlp_ratio=4, patch_size=4, strides=(4, 2, 2, 2),
                        out_indices=(2, 3), drop_path_rate=0.1, return_stereo_feat=True),
        state, 'img_backbone.')
    neck = _load(
        FPN_LSS(384, 64, scale_factor=2, input_feature_index=(0, 1), extra_upsample=None), state,
        'img_neck.')
    imgs = g['in_imgs'][0]
    for frame, cams in FRAME_IMAGES.items():
        stereo, out2, out3 = swin(imgs[cams])
        if frame == 'tm2':  # the detector's stereo-reference pass runs stage 0 only
            torch.testing.assert_close(swin.forward_stereo_feat(imgs[cams]), stereo, rtol=0,
                                       atol=0)
        for case in CASES:
            torch.testing.assert_close(stereo, g[f'{case}_stereo_feat_{frame}'], **TOL)
            if frame == 'tm2':
                continue  # the stereo-reference pass yields only the stage-0 feature
            torch.testing.assert_close(out2, g[f'{case}_swin_out2_{frame}'], **TOL)
            torch.testing.assert_close(out3, g[f'{case}_swin_out3_{frame}'], **TOL)
            recorded = [g[f'{case}_swin_out2_{frame}'], g[f'{case}_swin_out3_{frame}']]
            torch.testing.assert_close(neck(recorded), g[f'{case}_img_neck_{frame}'], **TOL)


@torch.no_grad()
def test_pre_process_bev_backbone_and_neck(golden):
    state, g = golden
    pre = _load(
        CustomResNet3D(8, num_layer=[1], num_channels=[8], stride=[1], backbone_output_ids=[0]),
        state, 'pre_process_net.')
    backbone = _load(
        CustomResNet3D(16, num_layer=[1, 2, 4], num_channels=[8, 16, 32], stride=[1, 2, 2],
                       backbone_output_ids=[0, 1, 2]), state, 'img_bev_encoder_backbone.')
    neck = _load(LSSFPN3D(56, 8), state, 'img_bev_encoder_neck.')
    for case in CASES:
        for frame in ('t', 'tm1'):
            (out, ) = pre(g[f'{case}_lss_bev_feat_{frame}'])
            torch.testing.assert_close(out, g[f'{case}_pre_process_{frame}'], **TOL)
        stages = backbone(g[f'{case}_bev_encoder_in'])
        recorded = [g[f'{case}_bev_backbone_s{i}'] for i in range(3)]
        for out, ref in zip(stages, recorded):
            torch.testing.assert_close(out, ref, **TOL)
        torch.testing.assert_close(neck(recorded), g[f'{case}_voxel_feat'], **TOL)
