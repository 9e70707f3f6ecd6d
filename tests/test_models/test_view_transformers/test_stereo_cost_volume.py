"""Stereo sampling grid and cost volume (spec 2.7.3), against pinhole geometry and hand sums."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mmdet3d.models.view_transformers.frustum_geometry import create_frustum
from mmdet3d.models.view_transformers.stereo_cost_volume import (stereo_cost_volume,
                                                                 stereo_sampling_grid)

IMAGE_SIZE = (64, 176)  # stereo frustum 16 x 44 at stride 4
DEPTH_CFG = [1.0, 45.0, 4.0]  # 11 bins


def _cameras(k2s: torch.Tensor) -> dict[str, torch.Tensor]:
    """B = 1, N = 2 cameras with different K and image augmentations."""
    intrins = torch.tensor([[[150., 0., 90.], [0., 150., 33.], [0., 0., 1.]],
                            [[120., 0., 80.], [0., 125., 30.], [0., 0., 1.]]])
    post_rots = torch.stack([torch.eye(3), torch.diag(torch.tensor([0.5, 0.5, 1.0]))])
    post_trans = torch.tensor([[0., 0., 0.], [4., -2., 0.]])
    return dict(k2s_sensor=k2s.expand(1, 2, 4, 4), intrins=intrins[None],
                post_rots=post_rots[None], post_trans=post_trans[None])


def _grid(k2s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    frustum = create_frustum(DEPTH_CFG, IMAGE_SIZE, 4)
    cams = _cameras(k2s)
    grid = stereo_sampling_grid(frustum, cams['k2s_sensor'], cams['intrins'], cams['post_rots'],
                                cams['post_trans'], IMAGE_SIZE)
    return frustum, grid.view(2, 11, 16, 44, 2)  # (B*N, D*H, W, 2) -> (B*N, D, H, W, 2)


def test_identity_motion_reproduces_current_feature():
    frustum, grid = _grid(torch.eye(4))
    pixels = frustum[..., :2] / torch.tensor([175.0, 63.0]) * 2 - 1  # (D, H, W, 2) normalised
    torch.testing.assert_close(grid, pixels.expand(2, -1, -1, -1, -1), rtol=0, atol=1e-5)
    feat = torch.randn(2, 8, 16, 44)
    warped = F.grid_sample(feat, grid.flatten(1, 2), align_corners=True)  # (B*N, C, D*H, W)
    torch.testing.assert_close(warped.view(2, 8, 11, 16, 44),
                               feat[:, :, None].expand(-1, -1, 11, -1, -1), rtol=0, atol=1e-4)
    cost = stereo_cost_volume(feat, feat, grid.flatten(1, 2), 11, bias=5.0)
    torch.testing.assert_close(cost, torch.full_like(cost, 1 / 11), rtol=0, atol=1e-5)


def test_lateral_baseline_gives_disparity():
    """Adjacent camera 0.5 m to the right: u' = u - f_aug * 0.5 / d in augmented pixels."""
    k2s = torch.eye(4)
    k2s[0, 3] = -0.5
    frustum, grid = _grid(k2s)
    u_aug, v_aug, depth = frustum.unbind(-1)
    for cam, f_aug in enumerate([150.0, 120.0 * 0.5]):
        expected_u = u_aug - f_aug * 0.5 / depth
        torch.testing.assert_close((grid[cam, ..., 0] + 1) / 2 * 175, expected_u, rtol=0,
                                   atol=1e-3)
        torch.testing.assert_close((grid[cam, ..., 1] + 1) / 2 * 63, v_aug, rtol=0, atol=1e-3)


def test_points_behind_adjacent_camera_are_invalid():
    """Adjacent camera 21 m ahead: depths 1..21 m end at z' <= 0 -> (-2, -2); 25..41 m are valid."""
    k2s = torch.eye(4)
    k2s[2, 3] = -21.0
    frustum, grid = _grid(k2s)
    assert (grid[:, :6] == -2).all()
    # valid points magnify about the principal point (90, 33) of camera 0 by d / (d - 21)
    u_aug, _, depth = frustum[6:].unbind(-1)
    expected_u = 90.0 + (u_aug - 90.0) * depth / (depth - 21.0)
    torch.testing.assert_close((grid[0, 6:, ..., 0] + 1) / 2 * 175, expected_u, rtol=0, atol=1e-3)


def test_cost_volume_by_hand_with_bias_from_last_group_only():
    """Bin 0 samples ``prev`` at the same pixels, bin 1 outside the image (warped = 0)."""
    height, width = 3, 5
    gen = torch.Generator().manual_seed(0)
    prev = torch.rand(1, 8, height, width, generator=gen) + 0.1
    curr = torch.rand(1, 8, height, width, generator=gen) + 0.1
    prev[0, 4, 0, 0] = 0.0  # last group's channel 0 (channel 4) is 0 at pixel (0, 0): invalid
    prev[0, 0, 1, 1] = 0.0  # first group's channel 0 is 0 at pixel (1, 1): no bias (quirk 13)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    same = torch.stack([xs / (width - 1) * 2 - 1, ys / (height - 1) * 2 - 1], dim=-1)
    grid = torch.cat([same, torch.full_like(same, -2.0)])[None]  # (1, D*H, W, 2), D = 2
    cost = stereo_cost_volume(prev, curr, grid.float(), num_bins=2, bias=5.0)

    l1_same = (curr - prev).abs().sum(1)[0].double()  # (H, W)
    l1_out = curr.abs().sum(1)[0].double() + 5.0
    l1_same[0, 0] += 5.0
    expected = torch.softmax(-torch.stack([l1_same, l1_out]), dim=0).float()[None]
    torch.testing.assert_close(cost, expected, rtol=0, atol=1e-5)
    no_bias = stereo_cost_volume(prev, curr, grid.float(), num_bins=2, bias=0.0)
    expected_no_bias = torch.softmax(
        -torch.stack([(curr - prev).abs().sum(1)[0], curr.abs().sum(1)[0]]), dim=0)[None]
    torch.testing.assert_close(no_bias, expected_no_bias, rtol=0, atol=1e-5)
