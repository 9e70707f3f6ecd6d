"""Plane-sweep stereo cost volume between the current and the previous frame (spec 2.7.3).

Every stereo-frustum point (u, v, d) of the current camera is moved into the same camera of the
adjacent (older) frame, projected, and the previous stage-0 feature is sampled there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .frustum_geometry import unproject_frustum

GROUP_SIZE = 4


def stereo_sampling_grid(frustum: Tensor, k2s_sensor: Tensor, intrins: Tensor, post_rots: Tensor,
                         post_trans: Tensor, image_size: tuple[int, int]) -> Tensor:
    """The original's ``gen_grid``: where each current frustum point lands in the previous image.

    Args:
        frustum: (D, H, W, 3) stereo frustum (u, v, d) of the current frame (stride 4).
        k2s_sensor: (B, N, 4, 4) current camera -> same camera of the adjacent frame.
        intrins: (B, N, 3, 3) K (shared by both frames).
        post_rots: (B, N, 3, 3) image augmentation (shared by both frames).
        post_trans: (B, N, 3) image augmentation translation.
        image_size: (H_in, W_in) input-image size the pixel coordinates normalise by.

    Returns:
        (B*N, D*H, W, 2) ``grid_sample`` coordinates (x, y) for ``align_corners=True``; points
        with camera z < 1e-3 in the adjacent camera are set to (-2, -2) (outside, zero-padded).
    """
    batch, cams = post_trans.shape[:2]
    num_bins, height, width, _ = frustum.shape
    height_in, width_in = image_size
    points = unproject_frustum(frustum, post_rots, post_trans)  # (B, N, D, H, W, 3, 1)
    combine = k2s_sensor[:, :, :3, :3].matmul(torch.inverse(intrins))  # (B, N, 3, 3)
    points = combine.view(batch, cams, 1, 1, 1, 3, 3).matmul(points)
    points = points + k2s_sensor[:, :, :3, 3].view(batch, cams, 1, 1, 1, 3, 1)
    invalid = points[..., 2, 0] < 1e-3  # (B, N, D, H, W)
    points = intrins.view(batch, cams, 1, 1, 1, 3, 3).matmul(points)
    points = points[..., :2, :] / points[..., 2:3, :]  # (B, N, D, H, W, 2, 1) pixels
    points = post_rots[..., :2, :2].view(batch, cams, 1, 1, 1, 2, 2).matmul(points).squeeze(-1)
    points = points + post_trans[..., :2].view(batch, cams, 1, 1, 1, 2)  # (B, N, D, H, W, 2)
    px = points[..., 0] / (width_in - 1.0) * 2.0 - 1.0
    py = points[..., 1] / (height_in - 1.0) * 2.0 - 1.0
    grid = torch.stack([px, py], dim=-1).masked_fill(invalid.unsqueeze(-1), -2.0)
    return grid.view(batch * cams, num_bins * height, width, 2)  # (B*N, D*H, W, 2)


def stereo_cost_volume(prev: Tensor, curr: Tensor, grid: Tensor, num_bins: int,
                       bias: float) -> Tensor:
    """The original's ``calculate_cost_volumn`` given the sampling grid; call it under no_grad.

    The previous feature is warped in groups of 4 channels (bilinear, zero padding,
    ``align_corners=True``) and the L1 distance to the current feature is summed over channels.
    Where channel 0 of the LAST group of the warped feature is exactly 0 (quirk 13: the test
    only looks at that one channel), ``bias`` is added to the cost. Returns ``softmax(-cost)``.

    Args:
        prev: (B*N, C, H, W) stage-0 feature of the adjacent (older) frame, C a multiple of 4.
        curr: (B*N, C, H, W) stage-0 feature of the current frame.
        grid: (B*N, D*H, W, 2) of :func:`stereo_sampling_grid`.
        num_bins: D.
        bias: cost added at invalid samples (5.0 in the configs).

    Returns:
        (B*N, D, H, W) probabilities over the D depth hypotheses.
    """
    batch_cams, channels, height, width = curr.shape
    if channels % GROUP_SIZE:
        raise ValueError(f'stereo features need a multiple of {GROUP_SIZE} channels, '
                         f'got {channels}')
    grid = grid.to(curr.dtype)
    cost = curr.new_zeros(batch_cams, num_bins, height, width)
    for start in range(0, channels, GROUP_SIZE):
        warped = F.grid_sample(
            prev[:, start:start + GROUP_SIZE],
            grid,
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True)  # (B*N, 4, D*H, W)
        warped = warped.view(batch_cams, GROUP_SIZE, num_bins, height, width)
        cost = cost + (curr[:, start:start + GROUP_SIZE].unsqueeze(2) - warped).abs().sum(dim=1)
    invalid = warped[:, 0] == 0  # (B*N, D, H, W), last group only (quirk 13)
    cost = cost + bias * invalid.to(cost.dtype)
    return (-cost).softmax(dim=1)
