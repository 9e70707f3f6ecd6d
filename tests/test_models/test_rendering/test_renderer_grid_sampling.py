"""Per-ray trilinear lookup against torch grid_sample with the original's convention."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.rendering.grid_sampling import continuous_voxel_index, trilinear_lookup

PC_RANGE = (-4.0, -3.0, -1.0, 4.0, 5.0, 2.2)


def _grid_sample_reference(volumes, slots, points, pc_range, align_corners):
    """One grid_sample call per ray on its own volume."""
    lo, hi = torch.tensor(pc_range[:3]), torch.tensor(pc_range[3:])
    out = []
    for r in range(points.shape[0]):
        vol = volumes[slots[r]].permute(3, 0, 1, 2)[None]  # (Z, Y, X, C) -> (1, C, Z, Y, X)
        grid = ((points[r] - lo) / (hi - lo) * 2 - 1).view(1, 1, 1, -1, 3)
        sampled = F.grid_sample(vol, grid.to(vol.dtype), mode='bilinear', padding_mode='zeros',
                                align_corners=align_corners)  # (1, C, 1, 1, S)
        out.append(sampled.view(vol.shape[1], -1).T)
    return torch.stack(out)


@pytest.mark.parametrize('align_corners', [True, False])
def test_lookup_equals_grid_sample(align_corners):
    volumes = torch.randn(5, 6, 7, 9, 3)
    slots = torch.randint(0, 5, (11,))
    lo, hi = torch.tensor(PC_RANGE[:3]), torch.tensor(PC_RANGE[3:])
    points = lo - 1 + torch.rand(11, 13, 3) * (hi - lo + 2)  # many outside the range
    got = trilinear_lookup(volumes, slots, points, PC_RANGE, align_corners)
    expected = _grid_sample_reference(volumes, slots, points, PC_RANGE, align_corners)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_conventions_on_voxel_centres_and_borders():
    volumes = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5, 1)
    pc_range = (0.0, 0.0, 0.0, 5.0, 4.0, 3.0)  # 1 m voxels, X=5, Y=4, Z=3
    centre = torch.tensor([[[2.5, 1.5, 0.5]]])  # voxel (x=2, y=1, z=0)
    slot = torch.tensor([1])
    fixed = trilinear_lookup(volumes, slot, centre, pc_range, align_corners=False)
    assert fixed.item() == volumes[1, 0, 1, 2, 0].item()
    corner = torch.tensor([[[0.0, 0.0, 0.0], [5.0, 4.0, 3.0]]])
    original = trilinear_lookup(volumes, slot, corner, pc_range, align_corners=True)
    torch.testing.assert_close(original[0, :, 0], volumes[1, [0, -1], [0, -1], [0, -1], 0])
    index = continuous_voxel_index(torch.tensor([5.0, 4.0, 3.0]), pc_range, (5, 4, 3), True)
    torch.testing.assert_close(index, torch.tensor([4.0, 3.0, 2.0]))
    outside = trilinear_lookup(volumes, slot, torch.tensor([[[9.0, 1.0, 1.0]]]), pc_range)
    assert outside.item() == 0.0


def test_lookup_gradcheck():
    volumes = torch.randn(2, 3, 4, 5, 2, dtype=torch.float64, requires_grad=True)
    pc_range = (0.0, 0.0, 0.0, 5.0, 4.0, 3.0)
    points = (torch.rand(3, 4, 3, dtype=torch.float64) * torch.tensor([6.0, 5.0, 4.0])
              - 0.5).requires_grad_()
    slots = torch.tensor([0, 1, 1])
    for align in (True, False):
        assert torch.autograd.gradcheck(
            lambda v, p: trilinear_lookup(v, slots, p, pc_range, align), (volumes, points))
