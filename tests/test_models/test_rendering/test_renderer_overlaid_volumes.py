"""Per-frame volumes as shared volumes plus changed voxels, against the dense per-frame copies."""
from __future__ import annotations

import torch

from mmdet3d.models.rendering.grid_sampling import trilinear_lookup
from mmdet3d.models.rendering.overlaid_volumes import OverlaidVolumes

PC_RANGE = (0.0, 0.0, 0.0, 5.0, 4.0, 3.0)  # 1 m voxels, (X, Y, Z) = (5, 4, 3)


def _overlay(dtype=torch.float32):
    """2 samples x 3 frames of (3, 4, 5, 2) volumes, 4 changed voxels; and the dense copies
    built by hand."""
    torch.manual_seed(0)
    volumes = torch.randn(2, 3, 4, 5, 2, dtype=dtype)
    # (b, t, z, y, x) of the changed voxels and their values
    changed = [(0, 0, 1, 2, 3), (0, 2, 0, 0, 0), (1, 1, 2, 3, 4), (1, 2, 1, 2, 3)]
    values = torch.randn(len(changed), 2, dtype=dtype)
    keys = torch.tensor([(((b * 3 + t) * 3 + z) * 4 + y) * 5 + x for b, t, z, y, x in changed])
    dense = volumes[:, None].repeat(1, 3, 1, 1, 1, 1)
    for (b, t, z, y, x), value in zip(changed, values):
        dense[b, t, z, y, x] = value
    return volumes, keys, values, dense.flatten(0, 1)


def test_dense_form_is_the_frames_with_the_changed_voxels():
    volumes, keys, values, dense = _overlay()
    overlaid = OverlaidVolumes.overlay(volumes, 3, keys, values)
    assert overlaid.shape == (6, 3, 4, 5, 2) and len(overlaid.table) == 2 * 60 + 4
    assert torch.equal(overlaid.dense(), dense)
    unchanged = OverlaidVolumes.overlay(volumes, 3, keys[:0], values[:0])
    assert torch.equal(unchanged.dense(), volumes[:, None].expand(2, 3, 3, 4, 5, 2).flatten(0, 1))


def test_lookup_reads_the_overlay_as_its_dense_volumes():
    """Values bit-equal to the lookup in the dense copies (the same corners, weights and order);
    gradients of the shared volumes and the changed values are the dense ones', summed."""
    volumes, keys, values, _ = _overlay(torch.float64)
    volumes.requires_grad_()
    values.requires_grad_()
    slots = torch.arange(6).repeat_interleave(3)  # every frame's volume, 3 rays each
    torch.manual_seed(1)
    points = torch.rand(18, 7, 3, dtype=torch.float64) * torch.tensor([6.0, 5.0, 4.0]) - 0.5
    overlaid = OverlaidVolumes.overlay(volumes, 3, keys, values)
    got = trilinear_lookup(overlaid, slots, points, PC_RANGE, align_corners=False)
    dense = overlaid.dense()
    expected = trilinear_lookup(dense, slots, points, PC_RANGE, align_corners=False)
    assert torch.equal(got, expected)
    weights = torch.randn_like(got)
    grads = torch.autograd.grad((got * weights).sum(), (volumes, values))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (volumes, values))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda v, c: trilinear_lookup(OverlaidVolumes.overlay(v, 3, keys, c), slots, points,
                                      PC_RANGE, align_corners=False), (volumes, values))
