"""The distortion loss: O(S) prefix-sum form against the O(S^2) definition, hand cases, gradients
and the rendered weights and intervals it is computed from (``loss_render_distortion``)."""
from __future__ import annotations

import pytest
import torch

from mmdet3d.models.losses.distortion_loss import DistortionLoss, ray_distortion
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry


def distortion_by_definition(weights, starts, ends):
    """sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 delta_i, double loop over samples."""
    mids = (starts + ends) / 2
    out = []
    for w, m, s, e in zip(weights, mids, starts, ends):
        pairs = sum(w[i] * w[j] * abs(m[i] - m[j]) for i in range(len(w)) for j in range(len(w)))
        out.append(pairs + (w ** 2 * (e - s)).sum() / 3)
    return torch.stack(out)


def random_intervals(rays: int, samples: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    edges = torch.cumsum(torch.rand(rays, samples + 1, generator=gen, dtype=dtype), dim=-1)
    weights = torch.rand(rays, samples, generator=gen, dtype=dtype)
    return weights / weights.sum(-1, keepdim=True) * 0.9, edges[:, :-1], edges[:, 1:]


def test_equals_the_definition():
    weights, starts, ends = random_intervals(5, 9)
    torch.testing.assert_close(ray_distortion(weights, starts, ends),
                               distortion_by_definition(weights, starts, ends))


def test_hand_cases():
    starts = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    ends = starts + 1.0
    # all weight in one 1 m interval: 1/3 * 1 * 1
    one = ray_distortion(torch.tensor([[0.0, 1.0, 0.0, 0.0]]), starts, ends)
    # split 0.5 / 0.5 between intervals 3 m apart: 2 * 0.25 * 3 + 1/3 * (0.25 + 0.25)
    split = ray_distortion(torch.tensor([[0.5, 0.0, 0.0, 0.5]]), starts, ends)
    torch.testing.assert_close(one, torch.tensor([1.0 / 3.0]))
    torch.testing.assert_close(split, torch.tensor([1.5 + 1.0 / 6.0]))
    assert ray_distortion(torch.zeros(1, 4), starts, ends).item() == 0.0


def test_gradcheck():
    weights, starts, ends = random_intervals(3, 6, torch.float64)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: ray_distortion(w, starts, ends), (weights,))


def test_loss_module():
    loss = MODELS.build(dict(type='DistortionLoss', loss_weight=0.5))
    assert loss(torch.tensor([1.0, 3.0])).item() == 1.0
    with pytest.raises(ValueError, match='loss_weight'):
        DistortionLoss(-1.0)


def test_renderer_returns_the_weights_and_intervals_of_its_rays():
    """The rendered rays carry the weights and intervals of their samples: with one uniform pass
    of 16 centred intervals, the intervals of [0.05, 8] and the weights of the density along
    them; the distortion of a ray through the slab is positive."""
    grid, pc_range = (8, 4, 4), (-4.0, -2.0, -2.0, 4.0, 2.0, 2.0)
    geometry = occ3d_geometry(pc_range, grid, render_frame_ids=[0])
    renderer = VolumeRenderer(geometry, render_range=(0.05, 8.0), samples_per_ray=16,
                              use_proposal=False, render_impl='torch')
    density = torch.full((1, 4, 4, 8, 1), 0.5)
    density[:, :, :, 6:] = 1.0  # a slab of high density near x = 2..4
    semantics = torch.zeros(1, 4, 4, 8, 17)
    rays = LidarRays(origins=torch.tensor([-3.5, 0.1, 0.1]).expand(1, 1, 3),
                     directions=torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
                     frame_cam=torch.zeros(2, 2, dtype=torch.long),
                     depth=torch.tensor([5.5, 1.5]), labels=torch.tensor([15, 15]))
    out = renderer(density, semantics, rays,
                   jitter_rand=torch.full((2, 15), 0.5))
    edges = torch.linspace(0.05, 8.0, 17)
    torch.testing.assert_close(out.starts, edges[:-1].expand(2, 16))
    torch.testing.assert_close(out.ends, edges[1:].expand(2, 16))
    sigma = out.density_at((out.starts + out.ends) / 2)
    alpha = 1 - torch.exp(-sigma * (out.ends - out.starts))
    transmittance = torch.cumprod(torch.cat([torch.ones(2, 1), 1 - alpha[:, :-1]], dim=1), dim=1)
    torch.testing.assert_close(out.weights, transmittance * alpha)
    distortion = ray_distortion(out.weights, out.starts, out.ends)
    assert distortion.shape == (2,) and (distortion > 0).all()
    loss = MODELS.build(dict(type='DistortionLoss', loss_weight=0.1))
    torch.testing.assert_close(loss(distortion), 0.1 * distortion.mean())
