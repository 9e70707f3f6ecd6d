"""3-D voxel losses against hand-computed formulas."""
from __future__ import annotations

import math

import pytest
import torch

from mmdet3d.registry import MODELS


def test_density_bce_over_all_voxels():
    loss_fn = MODELS.build(dict(type='OccDensityBCELoss', loss_weight=2.0))
    density = torch.tensor([0.9, 0.2, 0.6, 0.1]).view(1, 2, 2, 1, 1)
    labels = torch.tensor([4, 17, 17, 0], dtype=torch.uint8).view(1, 2, 2, 1)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.1)) / 4
    torch.testing.assert_close(loss_fn(density, labels), torch.tensor(2.0 * expected))


def test_semantic_ce_over_occupied_voxels_only():
    loss_fn = MODELS.build(dict(type='OccSemanticCELoss', loss_weight=1.0))
    logits = torch.randn(1, 2, 2, 1, 17)
    labels = torch.tensor([3, 17, 16, 17]).view(1, 2, 2, 1)
    flat = logits.view(4, 17)
    logp = torch.log_softmax(flat, dim=-1)
    expected = -(logp[0, 3] + logp[2, 16]) / 2
    torch.testing.assert_close(loss_fn(logits, labels), expected)


def test_semantic_ce_all_free_is_zero_with_grad():
    logits = torch.randn(1, 2, 2, 1, 17, requires_grad=True)
    loss = MODELS.build(dict(type='OccSemanticCELoss'))(logits, torch.full((1, 2, 2, 1), 17))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_density_bce_under_autocast_equals_float32():
    loss = MODELS.build(dict(type='OccDensityBCELoss'))
    density = torch.rand(1, 4, 4, 2, 1).clamp(0.05, 0.95)
    labels = torch.randint(0, 18, (1, 4, 4, 2))
    expected = loss(density, labels)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = loss(density.bfloat16(), labels)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-2)


def test_density_sparsity_is_the_weighted_mean_density_and_pulls_every_voxel_down():
    loss_fn = MODELS.build(dict(type='DensitySparsityLoss', loss_weight=0.5))
    density = torch.tensor([0.9, 0.2, 0.6, 0.1]).view(1, 2, 2, 1, 1).requires_grad_()
    loss = loss_fn(density)
    torch.testing.assert_close(loss, torch.tensor(0.5 * 0.45))
    loss.backward()
    torch.testing.assert_close(density.grad, torch.full_like(density, 0.5 / 4))
    with pytest.raises(ValueError, match='loss_weight'):
        MODELS.build(dict(type='DensitySparsityLoss', loss_weight=-1.0))
