"""Uniform pass and the inverse-CDF importance sampler (nerfacc 0.5.3's algorithm, spec 3.3)."""
from __future__ import annotations

import bisect

import pytest
import torch

from mmdet3d.models.rendering.ray_samplers import (importance_sampling,
                                                   importance_sampling_torch,
                                                   sample_along_rays, uniform_intervals)


def _scalar_reference(edges: list[float], cdf: list[float], n: int) -> tuple[list, list]:
    """One ray, written from the kernel's description (upper_bound over cdf[0:M))."""
    last = len(edges) - 1
    samples = []
    for k in range(n):
        u = cdf[0] + (k + 0.5) * ((cdf[-1] - cdf[0]) / n)
        p = bisect.bisect_right(cdf[:last], u)
        p0, p1 = min(max(p - 1, 0), last), min(max(p, 0), last)
        c0, c1, t0, t1 = cdf[p0], cdf[p1], edges[p0], edges[p1]
        if c1 - c0 < 1e-10:
            samples.append((t0 + t1) * 0.5)
        else:
            samples.append((u - c0) * ((t1 - t0) / (c1 - c0)) + t0)
    new_edges = [max(samples[0] - (samples[1] - samples[0]) * 0.5, edges[0])]
    new_edges += [(samples[k] + samples[k - 1]) * 0.5 for k in range(1, n)]
    new_edges.append(min(samples[-1] + (samples[-1] - samples[-2]) * 0.5, edges[-1]))
    return new_edges, samples


HAND_CDFS = [
    [0.0, 0.25, 0.5, 0.75, 1.0],  # linear
    [0.0, 0.25, 0.25, 0.25, 1.0],  # flat plateau hit exactly by u = 0.25
    [0.0, 0.0, 0.5, 0.5, 1.0],  # flat segments
    [0.0, 0.0, 0.0, 0.0, 1.0],  # all-zero weights: everything left in the last interval
    [0.0, 0.0, 0.0, 0.0, 0.0],  # degenerate: c_M == c_0
    [0.0, 1.0, 1.0, 1.0, 1.0],  # everything in the first interval
]


@pytest.mark.parametrize('n', [2, 4, 7])
def test_importance_sampling_equals_kernel_algorithm_on_hand_cdfs(n):
    edges = torch.tensor([[0.5, 1.0, 2.0, 4.0, 8.0]], dtype=torch.float64).repeat(
        len(HAND_CDFS), 1)
    cdfs = torch.tensor(HAND_CDFS, dtype=torch.float64)
    new_edges, samples = importance_sampling_torch(edges, cdfs, n)
    for r in range(len(HAND_CDFS)):
        ref_edges, ref_samples = _scalar_reference(edges[r].tolist(), HAND_CDFS[r], n)
        torch.testing.assert_close(samples[r], torch.tensor(ref_samples, dtype=torch.float64),
                                   rtol=0, atol=1e-12)
        torch.testing.assert_close(new_edges[r], torch.tensor(ref_edges, dtype=torch.float64),
                                   rtol=0, atol=1e-12)


def test_importance_sampling_known_values():
    edges = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]] * 3)
    cdfs = torch.tensor([HAND_CDFS[0], HAND_CDFS[3], HAND_CDFS[4]])
    new_edges, samples = importance_sampling_torch(edges, cdfs, 4)
    torch.testing.assert_close(samples[0], torch.tensor([0.5, 1.5, 2.5, 3.5]))
    torch.testing.assert_close(new_edges[0], torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(samples[1], torch.tensor([3.125, 3.375, 3.625, 3.875]))
    torch.testing.assert_close(new_edges[1], torch.tensor([3.0, 3.25, 3.5, 3.75, 4.0]))
    torch.testing.assert_close(samples[2], torch.full((4,), 3.5))
    torch.testing.assert_close(new_edges[2], torch.full((5,), 3.5))


def test_importance_sampling_random_cdfs_match_reference():
    edges = torch.rand(20, 31, dtype=torch.float64).cumsum(dim=1)
    weights = torch.rand(20, 30, dtype=torch.float64) ** 4
    weights[weights < 0.05] = 0.0
    cdfs = torch.cat([torch.zeros(20, 1, dtype=torch.float64), weights.cumsum(dim=1)], dim=1)
    cdfs = cdfs / cdfs[:, -1:]
    new_edges, samples = importance_sampling_torch(edges, cdfs, 16)
    for r in range(20):
        ref_edges, ref_samples = _scalar_reference(edges[r].tolist(), cdfs[r].tolist(), 16)
        torch.testing.assert_close(samples[r].tolist(), ref_samples, rtol=0, atol=1e-12)
        torch.testing.assert_close(new_edges[r].tolist(), ref_edges, rtol=0, atol=1e-12)
    assert bool((samples.diff(dim=1) >= 0).all())


def test_importance_sampling_nerfacc_on_cpu_refuses():
    edges = torch.linspace(0, 1, 5).expand(2, 5)
    with pytest.raises(RuntimeError):
        importance_sampling(edges, edges.clone(), 4, impl='nerfacc')


@pytest.mark.cuda
def test_importance_sampling_equals_nerfacc_kernel_cuda():
    edges = torch.rand(64, 51, device='cuda').cumsum(dim=1)
    trans = torch.exp(-torch.rand(64, 50, device='cuda').cumsum(dim=1))
    cdfs = 1 - torch.cat([torch.ones_like(trans[:, :1]), trans[:, :-1],
                          torch.zeros_like(trans[:, :1])], dim=1)
    got = importance_sampling(edges, cdfs, 100, impl='torch')
    expected = importance_sampling(edges, cdfs, 100, impl='nerfacc')
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-4)


def test_uniform_intervals_jitter():
    rand = torch.tensor([[0.0] * 3, [0.5] * 3, [0.999999] * 3])
    edges, centres = uniform_intervals(3, 4, 1.0, 9.0, rand)
    torch.testing.assert_close(edges[1], torch.tensor([1.0, 3.0, 5.0, 7.0, 9.0]))
    torch.testing.assert_close(edges[0], torch.tensor([1.0, 2.0, 4.0, 6.0, 9.0]))
    torch.testing.assert_close(edges[2], torch.tensor([1.0, 4.0, 6.0, 8.0, 9.0]), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(centres, (edges[:, 1:] + edges[:, :-1]) / 2)
    drawn, _ = uniform_intervals(100, 50, 0.05, 40.0)
    assert bool((drawn.diff(dim=1) > 0).all())
    assert bool((drawn[:, 0] == 0.05).all()) and bool((drawn[:, -1] == 40.0).all())


def test_sample_along_rays_empty_volume_puts_samples_in_last_interval():
    rand = torch.full((3, 9), 0.5)
    starts, ends, centres = sample_along_rays(lambda t: torch.zeros_like(t), 3, 0.0, 10.0,
                                              num_samples=8, num_proposal_samples=10,
                                              jitter_rand=rand, impl='torch')
    assert bool((starts >= 9.0).all()) and bool((ends <= 10.0).all())
    torch.testing.assert_close(centres[0], 9.0 + (torch.arange(8) + 0.5) / 8)


def test_sample_along_rays_follows_density_and_without_proposal():
    def density_fn(t):
        return ((t > 4.0) & (t < 5.0)).float() * 10.0

    _, _, centres = sample_along_rays(density_fn, 4, 0.0, 10.0, num_samples=32,
                                      num_proposal_samples=20, impl='torch')
    inside = ((centres > 3.5) & (centres < 5.5)).float().mean()
    assert inside > 0.9
    starts, ends, centres = sample_along_rays(density_fn, 4, 0.0, 10.0, num_samples=32,
                                              use_proposal=False, impl='torch')
    assert starts.shape == (4, 32)
    torch.testing.assert_close(starts[:, 1:], ends[:, :-1])
