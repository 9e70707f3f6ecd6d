"""RayOccupancyLoss: sample placement by hand, the BCE value, and the rendered rays' lookups."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.losses.ray_occupancy_loss import RayOccupancyLoss, ray_occupancy_samples
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry


def test_samples_by_hand():
    depth = torch.tensor([10.0, 1.2])
    rand = torch.tensor([[0.0, 0.5], [0.25, 1.0]])
    dist, targets, valid = ray_occupancy_samples(depth, near=0.5, num_free=2, free_margin=1.0,
                                                 hit_offset=0.2, rand=rand)
    # ray 0: free stretch [0.5, 9.0]; ray 1: [0.5, 0.2] is empty -> its free points are invalid
    torch.testing.assert_close(dist, torch.tensor([[0.5, 4.75, 10.2], [0.425, 0.2, 1.4]]))
    assert targets.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    assert valid.tolist() == [[True, True, True], [False, False, True]]


def test_loss_is_the_weighted_bce_of_the_valid_points():
    loss = RayOccupancyLoss(loss_weight=0.5)
    density = torch.tensor([[0.2, 0.9], [0.3, 0.6]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    valid = torch.tensor([[True, True], [False, True]])
    value = loss(density, targets, valid)
    expected = 0.5 * F.binary_cross_entropy(torch.tensor([0.2, 0.9, 0.6]),
                                            torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(value, expected)
    value.backward()
    assert density.grad[1, 0] == 0 and density.grad[0, 0] > 0 and density.grad[0, 1] < 0
    assert loss(density, targets, torch.zeros_like(valid)).item() == 0.0
    with pytest.raises(ValueError, match='>= 0'):
        RayOccupancyLoss(num_free=-1)
    with pytest.raises(ValueError, match='>= 0'):
        RayOccupancyLoss(hit_weight=-1.0)


def test_hit_weight_scales_the_occupied_terms_by_hand():
    density = torch.tensor([[0.2, 0.9], [0.3, 0.6]])
    targets = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    valid = torch.tensor([[True, True], [False, True]])
    value = RayOccupancyLoss(loss_weight=1.0, hit_weight=4.0)(density, targets, valid)
    free, hit_a, hit_b = -math.log(0.8), -math.log(0.9), -math.log(0.6)
    assert value.item() == pytest.approx((free + 4 * hit_a + 4 * hit_b) / 3, rel=1e-6)


def test_rendered_rays_read_the_density_at_the_free_and_hit_points():
    """A wall of density 0.9 from x = 2 m on, free (0.1) before it: a ray along +x returning at
    2.2 m sees 0.1 at its free points and 0.9 at its hit point."""
    grid, pc_range = (8, 4, 4), (-4.0, -2.0, -2.0, 4.0, 2.0, 2.0)
    renderer = VolumeRenderer(occ3d_geometry(pc_range, grid, render_frame_ids=[0],
                                             align_corners=False),
                              render_range=(0.05, 8.0), samples_per_ray=8, use_proposal=False,
                              render_impl='torch')
    loss = RayOccupancyLoss(num_free=4, free_margin=1.0, hit_offset=0.3)
    density = torch.full((1, 4, 4, 8, 1), 0.1)  # (B, Z, Y, X, 1), cells of 1 m
    density[..., 6:, :] = 0.9  # x >= 2 m
    semantics = torch.zeros(1, 4, 4, 8, 17)
    rays = LidarRays(origins=torch.tensor([0.0, 0.5, 0.5]).expand(1, 1, 3),
                     directions=torch.tensor([[1.0, 0.0, 0.0]]),
                     frame_cam=torch.zeros(1, 2, dtype=torch.long), depth=torch.tensor([2.2]),
                     labels=torch.tensor([15]))
    torch.manual_seed(0)
    out = renderer(density, semantics, rays)
    distances, targets, valid = loss.samples(rays.depth, renderer.near)
    occupancy = out.density_at(distances)
    assert occupancy.shape == targets.shape == valid.shape == (1, 5) and valid.all()
    # free points lie in [0.05, 1.2] m: cell centres 0.5 (0.1) and 1.5 (0.1): density 0.1
    torch.testing.assert_close(occupancy[0, :4], torch.full((4,), 0.1))
    torch.testing.assert_close(occupancy[0, 4], torch.tensor(0.9))  # x = 2.5, inside the wall
    expected = 0.1 * F.binary_cross_entropy(occupancy[valid], targets[valid])
    torch.testing.assert_close(loss(occupancy, targets, valid), expected)
