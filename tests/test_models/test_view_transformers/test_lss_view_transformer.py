"""LSSViewTransformerBEVStereo at reduced size: shapes, gradients, collapse_z, quirk-4 flag."""
from __future__ import annotations

import pytest
import torch

from mmdet3d.models.view_transformers.lss_view_transformer import LSSViewTransformerBEVStereo
from mmdet3d.registry import MODELS
from mmdet3d.testing.geometry import occ3d_geometry

# 2 x 2 x 1.6 m voxels, 2 m depth bins
GEOMETRY = occ3d_geometry((-20, -20, -1, 20, 20, 5.4), (20, 20, 4), depth_bins=[1.0, 33.0, 2.0])
B, N, C_IN, C_OUT, D = 1, 2, 16, 6, 16  # grid (X, Y, Z) = (20, 20, 4)


def _build(**kwargs) -> LSSViewTransformerBEVStereo:
    cfg = dict(type='LSSViewTransformerBEVStereo', geometry=GEOMETRY, input_size=(128, 352),
               downsample=16, in_channels=C_IN, out_channels=C_OUT, collapse_z=False,
               loss_depth_weight=0.05,
               depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=4, stereo=True, bias=5.0))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _frame() -> dict[str, torch.Tensor]:
    """Two cameras looking forward and backward from 1.5 m height, 1 m forward motion."""
    gen = torch.Generator().manual_seed(0)
    cam_to_ego = torch.tensor([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])
    back = torch.diag(torch.tensor([-1., -1., 1.]))
    s2e = torch.eye(4).repeat(B, N, 1, 1)
    s2e[0, 0, :3, :3], s2e[0, 1, :3, :3] = cam_to_ego, back @ cam_to_ego
    s2e[0, :, 2, 3] = 1.5
    k2s = torch.eye(4).repeat(B, N, 1, 1)
    k2s[0, 0, 2, 3], k2s[0, 1, 2, 3] = 1.0, -1.0  # camera z offset to the older frame's camera
    intrins = torch.tensor([[200., 0., 176.], [0., 200., 64.], [0., 0., 1.]]).repeat(B, N, 1, 1)
    return dict(
        img_feats=torch.randn(B, N, C_IN, 8, 22, generator=gen),
        sensor2keyego=s2e, intrins=intrins, post_rots=torch.eye(3).repeat(B, N, 1, 1),
        post_trans=torch.zeros(B, N, 3), bda=torch.eye(3).repeat(B, 1, 1),
        stereo_curr=torch.randn(B * N, 8, 32, 88, generator=gen),
        stereo_prev=torch.randn(B * N, 8, 32, 88, generator=gen), k2s_sensor=k2s)


def _forward(vt: LSSViewTransformerBEVStereo, frame: dict[str, torch.Tensor]):
    mlp_input = vt.get_mlp_input(frame['sensor2keyego'], frame['intrins'], frame['post_rots'],
                                 frame['post_trans'], frame['bda'])
    return vt(frame['img_feats'], frame['sensor2keyego'], frame['intrins'], frame['post_rots'],
              frame['post_trans'], frame['bda'], mlp_input, stereo_curr=frame['stereo_curr'],
              stereo_prev=frame['stereo_prev'], k2s_sensor=frame['k2s_sensor'])


def test_forward_shapes_and_gradients():
    vt = _build()
    assert vt.frustum.shape == (D, 8, 22, 3) and vt.cv_frustum.shape == (D, 32, 88, 3)
    assert 'frustum' not in vt.state_dict()
    frame = _frame()
    frame['img_feats'].requires_grad_(True)
    bev_feat, depth = _forward(vt, frame)
    assert bev_feat.shape == (B, C_OUT, 4, 20, 20)  # (B, C, Z, Y, X)
    assert depth.shape == (B * N, D, 8, 22)
    torch.testing.assert_close(depth.sum(1), torch.ones(B * N, 8, 22))
    assert (bev_feat != 0).any(dim=1).sum() > 50  # both cameras fill part of the grid
    gt_depth = torch.zeros(B, N, 128, 352)
    gt_depth[:, :, ::7, ::5] = 12.3
    losses = vt.get_depth_loss(gt_depth, depth)
    (bev_feat.square().sum() + losses['loss_depth']).backward()
    for name in ('reduce_conv.0.weight', 'context_conv.weight', 'cost_volumn_net.0.weight',
                 'depth_conv.4.weight', 'bn.weight'):
        assert vt.depth_net.get_parameter(name).grad.abs().sum() > 0, name
    assert frame['img_feats'].grad.abs().sum() > 0


def test_collapse_z_is_z_major_concatenation():
    vt = _build().eval()
    frame = _frame()
    with torch.no_grad():
        bev_feat, _ = _forward(vt, frame)
        vt.collapse_z = True
        collapsed, _ = _forward(vt, frame)
    assert collapsed.shape == (B, 4 * C_OUT, 20, 20)
    torch.testing.assert_close(collapsed, torch.cat(bev_feat.unbind(dim=2), dim=1))


def test_no_point_in_grid_gives_zeros():
    vt = _build().eval()
    frame = _frame()
    frame['sensor2keyego'][..., 2, 3] = 100.0  # cameras far above the grid
    with torch.no_grad():
        bev_feat, depth = _forward(vt, frame)
    assert bev_feat.shape == (B, C_OUT, 4, 20, 20) and (bev_feat == 0).all()
    assert depth.shape == (B * N, D, 8, 22)


@pytest.mark.parametrize('floor', [False, True])
def test_truncation_quirk_and_floor_flag(floor: bool):
    """x = -20.5 m is -0.25 voxel: truncation (original) pools it into voxel 0, floor drops it."""
    vt = _build(floor_voxel_coords=floor)
    coor = torch.tensor([-20.5, 0.5, 0.1]).view(1, 1, 1, 1, 1, 3)  # (B, N, D, h, w, 3)
    feat = torch.full((1, 1, C_OUT, 1, 1), 2.0)
    bev_feat = vt.voxel_pooling(coor, torch.ones(1, 1, 1, 1, 1), feat)
    expected = torch.zeros(1, C_OUT, 4, 20, 20)
    if not floor:
        expected[0, :, 0, 10, 0] = 2.0  # z = 1.1 / 1.6 -> 0, y = 20.5 / 2 -> 10
    torch.testing.assert_close(bev_feat, expected, rtol=0, atol=0)


def test_missing_prev_frame_uses_zero_cost_volume():
    vt = _build().eval()
    frame = _frame()
    frame['stereo_prev'] = None
    mlp_input = vt.get_mlp_input(frame['sensor2keyego'], frame['intrins'], frame['post_rots'],
                                 frame['post_trans'], frame['bda'])
    with torch.no_grad():
        _, depth = _forward(vt, frame)
        raw = vt.depth_net(frame['img_feats'].flatten(0, 1), mlp_input,
                           torch.zeros(B * N, D, 32, 88))
    torch.testing.assert_close(depth, raw[:, :D].softmax(1))


@pytest.mark.cuda
def test_cuda_matches_cpu(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    vt = _build().eval()
    frame = _frame()
    with torch.no_grad():
        bev_cpu, depth_cpu = _forward(vt, frame)
        bev_gpu, depth_gpu = _forward(vt.cuda(), {k: v.cuda() for k, v in frame.items()})
    torch.testing.assert_close(depth_gpu.cpu(), depth_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bev_gpu.cpu(), bev_cpu, rtol=1e-4, atol=1e-4)


def test_mixed_precision_pools_in_the_wider_dtype():
    """Under autocast the depth softmax stays float32 while the context is half: pool in float32."""
    vt = _build().eval()
    frame = _frame()
    coor = vt.get_lidar_coor(frame['sensor2keyego'], frame['intrins'], frame['post_rots'],
                           frame['post_trans'], frame['bda'])
    gen = torch.Generator().manual_seed(1)
    depth = torch.rand(B, N, D, 8, 22, generator=gen)
    feat = torch.randn(B, N, C_OUT, 8, 22, generator=gen).to(torch.bfloat16)
    mixed = vt.voxel_pooling(coor, depth, feat)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, vt.voxel_pooling(coor, depth, feat.float()), rtol=0, atol=0)


@pytest.mark.cuda
def test_cuda_autocast_float16_forward():
    vt = _build().eval().cuda()
    frame = {k: v.cuda() for k, v in _frame().items()}
    with torch.no_grad():
        bev_fp32, depth_fp32 = _forward(vt, frame)
        with torch.autocast('cuda', dtype=torch.float16):
            bev_amp, depth_amp = _forward(vt, frame)
    assert bev_amp.dtype == torch.float32
    torch.testing.assert_close(depth_amp.float(), depth_fp32, rtol=0, atol=2e-2)
    torch.testing.assert_close(bev_amp, bev_fp32, rtol=0, atol=5e-2 * bev_fp32.abs().max().item())
