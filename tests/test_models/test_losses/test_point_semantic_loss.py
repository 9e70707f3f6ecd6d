"""``loss_point_semantics``: the class-weighted CE of the logits at each rendered ray's return."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.losses.class_weights import ClassBalancedLogWeights
from mmdet3d.models.losses.render_losses import RenderSemanticLoss
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry


def make_renderer() -> VolumeRenderer:
    """1 m cells over x in [-4, 4), y and z in [-2, 2); one frame; cell-aligned lookup."""
    geometry = occ3d_geometry((-4.0, -2.0, -2.0, 4.0, 2.0, 2.0), (8, 4, 4), render_frame_ids=[0],
                              align_corners=False)
    return VolumeRenderer(geometry, render_range=(0.05, 8.0), samples_per_ray=8,
                          use_proposal=False, render_impl='torch')


def test_rendered_rays_read_the_logits_at_the_return():
    """Two rays along +x from (0, 0.5, 0.5) return at x = 2.5 and 0.5 m, cell centres (z 2, y 2,
    x 6) and (2, 2, 4): their point logits are those cells' logits, whatever the ray passed."""
    renderer = make_renderer()
    torch.manual_seed(0)
    semantics = torch.randn(1, 4, 4, 8, 17)  # (B, Z, Y, X, K)
    density = torch.full((1, 4, 4, 8, 1), 0.5)
    rays = LidarRays(origins=torch.tensor([0.0, 0.5, 0.5]).expand(1, 2, 3),
                     directions=torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
                     frame_cam=torch.zeros(2, 2, dtype=torch.long),
                     depth=torch.tensor([2.5, 0.5]), labels=torch.tensor([15, 11]))
    batch = rays.select(torch.tensor([1, 0]))  # rendered in the given order: ray 1 first
    out = renderer(density, semantics, batch)
    logits = out.semantics_at(batch.depth[:, None])[:, 0]
    expected_logits = torch.stack([semantics[0, 2, 2, 4], semantics[0, 2, 2, 6]])
    torch.testing.assert_close(logits, expected_logits)
    class_weights = ClassBalancedLogWeights()
    loss = RenderSemanticLoss(loss_weight=0.5)(logits, batch.labels,
                                               class_weights(batch.labels))
    labels = torch.tensor([11, 15])
    expected = 0.5 * (class_weights.class_weights[labels]
                      * F.cross_entropy(expected_logits, labels, reduction='none')).mean()
    torch.testing.assert_close(loss, expected)


def test_negative_weights_refused():
    with pytest.raises(ValueError, match='loss_weight'):
        RenderSemanticLoss(loss_weight=-1.0)
