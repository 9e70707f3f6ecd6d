"""Rendering weights and accumulation against nerfacc 0.5.3's batched functions and by hand."""
from __future__ import annotations

import math

import pytest
import torch

from mmdet3d.models.rendering.volume_rendering import (accumulate_along_rays, use_nerfacc,
                                                       weights_from_density)


def _random_intervals(num_rays: int = 7, num_samples: int = 33):
    edges = torch.rand(num_rays, num_samples + 1).mul(3.0).cumsum(dim=1)
    sigmas = torch.rand(num_rays, num_samples) ** 3
    return edges[:, :-1], edges[:, 1:], sigmas


def test_weights_equal_nerfacc_batched():
    from nerfacc import render_weight_from_density
    starts, ends, sigmas = _random_intervals()
    expected = render_weight_from_density(starts, ends, sigmas)
    got = weights_from_density(starts, ends, sigmas, impl='torch')
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)
    via_nerfacc = weights_from_density(starts, ends, sigmas, impl='nerfacc')
    for g, e in zip(via_nerfacc, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_accumulate_equals_nerfacc_batched():
    from nerfacc import accumulate_along_rays as nerfacc_accumulate
    weights = torch.rand(5, 11)
    values = torch.randn(5, 11, 4)
    expected = nerfacc_accumulate(weights, values)
    torch.testing.assert_close(accumulate_along_rays(weights, values, impl='torch'), expected)
    torch.testing.assert_close(accumulate_along_rays(weights, values, impl='nerfacc'), expected)


def test_weights_by_hand_and_bounded():
    starts = torch.tensor([[0.0, 1.0, 2.0]])
    ends = torch.tensor([[1.0, 2.0, 3.0]])
    sigmas = torch.tensor([[0.4, 0.8, 0.1]])
    weights, trans, alphas = weights_from_density(starts, ends, sigmas, impl='torch')
    exp_trans = [1.0, math.exp(-0.4), math.exp(-1.2)]
    exp_alpha = [1 - math.exp(-0.4), 1 - math.exp(-0.8), 1 - math.exp(-0.1)]
    torch.testing.assert_close(trans, torch.tensor([exp_trans]))
    torch.testing.assert_close(alphas, torch.tensor([exp_alpha]))
    torch.testing.assert_close(weights, trans * alphas)
    starts, ends, sigmas = _random_intervals(50, 40)
    weights, trans, _ = weights_from_density(starts, ends, sigmas * 20, impl='torch')
    total = weights.sum(dim=1)
    assert bool((weights >= 0).all()) and bool((total <= 1 + 1e-6).all())
    final_trans = torch.exp(-(sigmas * 20 * (ends - starts)).sum(dim=1))
    torch.testing.assert_close(total, 1 - final_trans, atol=1e-5, rtol=0)


def test_impl_switch():
    cpu = torch.zeros(1)
    assert not use_nerfacc('auto', cpu)
    assert not use_nerfacc('torch', cpu)
    assert use_nerfacc('nerfacc', cpu)
    with pytest.raises(ValueError):
        use_nerfacc('cuda', cpu)
