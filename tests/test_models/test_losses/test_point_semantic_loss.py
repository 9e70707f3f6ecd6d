"""``loss_point_semantics``: the class-weighted CE of the logits at each rendered ray's return."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.losses.render_losses import RenderLosses
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry


def make_renderer(weight: float) -> VolumeRenderer:
    """1 m cells over x in [-4, 4), y and z in [-2, 2); one frame; cell-aligned lookup."""
    geometry = occ3d_geometry((-4.0, -2.0, -2.0, 4.0, 2.0, 2.0), (8, 4, 4), render_frame_ids=[0],
                              align_corners=False)
    return VolumeRenderer(geometry, render_range=(0.05, 8.0), samples_per_ray=8,
                          use_proposal=False, render_impl='torch',
                          point_semantic_loss_weight=weight)


def test_renderer_reads_the_logits_at_the_return():
    """Two rays along +x from (0, 0.5, 0.5) return at x = 2.5 and 0.5 m, cell centres (z 2, y 2,
    x 6) and (2, 2, 4): their point logits are those cells' logits, whatever the ray passed."""
    renderer = make_renderer(0.5)
    torch.manual_seed(0)
    semantics = torch.randn(1, 4, 4, 8, 17)  # (B, Z, Y, X, K)
    density = torch.full((1, 4, 4, 8, 1), 0.5)
    rays = [LidarRays(origins=torch.tensor([0.0, 0.5, 0.5]).expand(1, 2, 3),
                      directions=torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
                      frame_cam=torch.zeros(2, 2, dtype=torch.long),
                      depth=torch.tensor([2.5, 0.5]), labels=torch.tensor([15, 11]))]
    out = renderer(density, semantics, rays, torch.eye(3)[None], ray_perm=torch.tensor([1, 0]))
    # rendered in the permuted order: ray 1 first
    expected_logits = torch.stack([semantics[0, 2, 2, 4], semantics[0, 2, 2, 6]])
    torch.testing.assert_close(out['point_semantics'], expected_logits)
    losses = renderer.loss(out, rays)
    class_weights = renderer.losses.class_weights
    labels = torch.tensor([11, 15])
    expected = 0.5 * (class_weights[labels]
                      * F.cross_entropy(expected_logits, labels, reduction='none')).mean()
    torch.testing.assert_close(losses['loss_point_semantics'], expected)
    assert {'loss_render_depth', 'loss_render_semantics'} < set(losses)


def test_off_by_default_and_negative_weights_refused():
    renderer = make_renderer(0.0)
    rays = [LidarRays(origins=torch.zeros(1, 1, 3), directions=torch.tensor([[1.0, 0.0, 0.0]]),
                      frame_cam=torch.zeros(1, 2, dtype=torch.long), depth=torch.tensor([2.5]),
                      labels=torch.tensor([15]))]
    out = renderer(torch.full((1, 4, 4, 8, 1), 0.5), torch.zeros(1, 4, 4, 8, 17), rays,
                   torch.eye(3)[None])
    assert 'point_semantics' not in out
    assert 'loss_point_semantics' not in renderer.loss(out, rays)
    with pytest.raises(ValueError, match='point_semantic_loss_weight'):
        RenderLosses(True, None, 0.05, 'mse', 1.0, None, None, point_semantic_loss_weight=-1.0)
