"""The distortion loss of mip-NeRF 360 on rendered rays: concentrates each ray's weights.

A field that explains its rays with haze (a little density spread over many metres) renders
depths that stop short and leaves no voxel above the free-space threshold at the surface; this
loss prefers a field whose weights sit in one short stretch of each ray.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS


def ray_distortion(weights: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """Per-ray distortion sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 (e_i - s_i), in metres.

    Computed in O(S) with prefix sums over the sorted intervals (m = interval midpoints):
    sum_ij w_i w_j |m_i - m_j| = 2 sum_i w_i (m_i W_<i - (w m)_<i).

    Args:
        weights: (R, S) render weights.
        starts: (R, S) interval starts, sorted along each ray, metres.
        ends: (R, S) interval ends, metres.

    Returns:
        (R,) distortion of each ray.
    """
    mids = (starts + ends) / 2.0
    weight_before = torch.cumsum(weights, dim=-1) - weights  # (R, S) exclusive prefix sums
    weighted_mid_before = torch.cumsum(weights * mids, dim=-1) - weights * mids
    between = 2.0 * (weights * (mids * weight_before - weighted_mid_before)).sum(dim=-1)
    within = (weights ** 2 * (ends - starts)).sum(dim=-1) / 3.0
    return between + within


@MODELS.register_module()
class DistortionLoss(nn.Module):
    """``loss_weight x`` the mean per-ray distortion (:func:`ray_distortion`, metres).

    Args:
        loss_weight: multiplier (per metre). Defaults to 0.01.
    """

    def __init__(self, loss_weight: float = 0.01) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        self.loss_weight = loss_weight

    def forward(self, distortion: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            distortion: (R,) per-ray distortion from :func:`ray_distortion`.

        Returns:
            scalar loss.
        """
        return self.loss_weight * distortion.mean()
