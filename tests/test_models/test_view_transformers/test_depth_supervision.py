"""Depth-label downsampling, bin assignment and the depth BCE loss (spec 2.7.5), by hand."""
from __future__ import annotations

import math

import pytest
import torch

from mmdet3d.models.losses.depth_loss import depth_bce_loss, downsample_gt_depth
from mmdet3d.models.view_transformers.frustum_geometry import depth_bin_values
from mmdet3d.models.view_transformers.lss_view_transformer import LSSViewTransformerBEVStereo
from mmdet3d.testing.geometry import occ3d_geometry

DEPTH_CFG = [1.0, 45.0, 0.5]  # bin j covers [1 + 0.5 j, 1.5 + 0.5 j), D = 88


def _patches(values: list[list[float]], size: int = 4) -> torch.Tensor:
    """(1, 1, size, len * size) depth map; patch i holds values[i] in its first pixels."""
    gt = torch.zeros(1, 1, size, size * len(values))
    for i, depths in enumerate(values):
        for k, d in enumerate(depths):
            gt[0, 0, k // size, i * size + k % size] = d
    return gt


def test_min_nonzero_depth_and_bins():
    cases = [
        ([0.0, 3.2, 2.1], 2),  # min non-zero 2.1 m -> [2.0, 2.5) = bin 2
        ([], None),  # empty patch
        ([0.7, 3.0], None),  # the minimum 0.7 m is below the first bin: no target at all
        ([50.0], None),  # beyond the last bin
        ([60.0, 1.0], 0),  # 1.0 m -> bin 0
        ([44.9], 87),  # last bin [44.5, 45)
        ([45.0], None),  # the upper bound itself is outside
        ([1.4999], 0),
        ([1.5], 1),
        ([0.9999], None),  # truncation: q = 0.9998 -> class 0, dropped
    ]
    gt = _patches([depths for depths, _ in cases])
    labels = downsample_gt_depth(gt, 4, DEPTH_CFG, 88)
    assert labels.shape == (len(cases), 88) and labels.dtype == torch.float32
    for row, (_, expected_bin) in zip(labels, cases):
        expected = torch.zeros(88)
        if expected_bin is not None:
            expected[expected_bin] = 1.0
        torch.testing.assert_close(row, expected, rtol=0, atol=0)


def test_patch_order_is_batch_camera_row_column():
    gt = torch.zeros(2, 3, 8, 12)  # patches 2 x 3 per camera, downsample 4
    b, n, row, col = 1, 2, 1, 0
    gt[b, n, row * 4 + 3, col * 4 + 1] = 10.2  # bin (10.2 - 1) / 0.5 -> 18
    labels = downsample_gt_depth(gt, 4, DEPTH_CFG, 88)
    assert labels.shape == (2 * 3 * 2 * 3, 88)
    index = ((b * 3 + n) * 2 + row) * 3 + col
    assert labels.sum() == 1 and labels[index, 18] == 1


def test_sid_bins_are_centred_on_their_depths():
    depths = depth_bin_values(DEPTH_CFG, sid=True)
    between = torch.sqrt(depths[1:] * depths[:-1])  # geometric midpoints, bins 0..86
    gt = between.view(1, 1, 1, -1)
    labels = downsample_gt_depth(gt, 1, DEPTH_CFG, 88, sid=True)
    torch.testing.assert_close(labels.argmax(1), torch.arange(87))
    assert (labels.sum(1) == 1).all()


def test_loss_is_mean_bce_over_foreground_patches():
    gen = torch.Generator().manual_seed(0)
    gt = _patches([[2.1], [], [44.9], [0.5]])  # 2 foreground patches of 4
    preds = torch.softmax(torch.randn(1, 88, 1, 4, generator=gen), dim=1)  # (B*N, D, h, w)
    labels = downsample_gt_depth(gt, 4, DEPTH_CFG, 88)
    loss = depth_bce_loss(labels, preds, loss_weight=0.05)
    p = preds[0, :, 0].double().T  # (4 patches, 88)
    total = 0.0
    for patch, target in [(0, 2), (2, 87)]:
        y = torch.zeros(88, dtype=torch.float64)
        y[target] = 1
        total -= float((y * p[patch].log() + (1 - y) * (1 - p[patch]).log()).sum())
    assert math.isclose(float(loss), 0.05 * total / 2, rel_tol=1e-5)


def test_loss_without_foreground_is_zero():
    labels = downsample_gt_depth(torch.zeros(1, 1, 4, 8), 4, DEPTH_CFG, 88)
    preds = torch.full((1, 88, 1, 2), 1 / 88)
    assert float(depth_bce_loss(labels, preds, 0.05)) == 0.0


def test_loss_runs_in_fp32_under_autocast():
    gen = torch.Generator().manual_seed(1)
    labels = downsample_gt_depth(_patches([[3.0], [7.5]]), 4, DEPTH_CFG, 88)
    preds = torch.softmax(torch.randn(1, 88, 1, 2, generator=gen), dim=1).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = depth_bce_loss(labels, preds, 0.05)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, depth_bce_loss(labels, preds.float(), 0.05))


@pytest.mark.parametrize('weight', [0.05, 3.0])
def test_view_transformer_loss_key_and_weight(weight: float):
    vt = LSSViewTransformerBEVStereo(
        geometry=occ3d_geometry((-4, -4, -1, 4, 4, 3), (8, 8, 4), depth_bins=DEPTH_CFG),
        input_size=(16, 32), downsample=16, in_channels=4, out_channels=2,
        loss_depth_weight=weight, depthnet_cfg=dict(aspp_mid_channels=2))
    gt = torch.zeros(1, 2, 16, 32)
    gt[0, 1, 3, 20] = 5.2  # camera 1, patch (0, 1), bin 8
    preds = torch.softmax(torch.randn(2, 88, 1, 2), dim=1)
    losses = vt.get_depth_loss(gt, preds)
    assert list(losses) == ['loss_depth']
    p = preds[1, :, 0, 1].double()
    y = torch.zeros(88, dtype=torch.float64)
    y[8] = 1
    expected = -weight * float((y * p.log() + (1 - y) * (1 - p).log()).sum())
    assert math.isclose(float(losses['loss_depth']), expected, rel_tol=1e-5)
