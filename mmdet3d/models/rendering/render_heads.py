"""Render heads: what each rendered quantity accumulates and its loss (spec 3.2 step 4, 3.6).

Losses are class-weighted means over the R rendered rays (divided by R, not by sum of weights).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class DepthRenderHead(nn.Module):
    """Rendered distance: accumulated interval midpoints; weighted MSE (or L1) loss.

    Args:
        loss_weight: multiplier of ``loss_render_depth``. Defaults to 0.05.
        loss_type: ``'mse'`` (the original) or ``'l1'``. With the squared error a ray's pull
            grows with its error, so the long rays, whose rendered depth errs by metres, outweigh
            the near walls and ground; with L1 every ray pulls equally hard. Defaults to 'mse'.
    """

    loss_name = 'loss_render_depth'
    target_key = 'depth'
    LOSS_TYPES = ('mse', 'l1')

    def __init__(self, loss_weight: float = 0.05, loss_type: str = 'mse') -> None:
        super().__init__()
        if loss_type not in self.LOSS_TYPES:
            raise ValueError(f'depth loss_type must be one of {self.LOSS_TYPES}, got '
                             f'{loss_type!r}')
        self.loss_weight = loss_weight
        self.loss_type = loss_type

    @staticmethod
    def sample_values(t_starts: Tensor, t_ends: Tensor) -> Tensor:
        """Per-sample depth values (R, S, 1): (start + end) / 2 in metres (not the sample
        centres)."""
        return ((t_starts + t_ends) / 2.0)[..., None]  # (R, S) -> (R, S, 1)

    def loss(self, pred: Tensor, depth: Tensor, ray_weights: Tensor) -> Tensor:
        """Weighted MSE (or L1).

        Args:
            pred: (R, 1) rendered depth, metres.
            depth: (R,) GT depth, metres (camera z-depth in the original data, quirk 1).
            ray_weights: (R,) class weight of each ray.

        Returns:
            scalar: loss_weight * mean_r(w_r * (pred_r - depth_r)^2), or |pred_r - depth_r|
            with ``loss_type='l1'``.
        """
        error = pred.squeeze(-1) - depth  # (R, 1) -> (R,)
        error = error.abs() if self.loss_type == 'l1' else error ** 2
        return self.loss_weight * (ray_weights * error).mean()


@MODELS.register_module()
class SemanticRenderHead(nn.Module):
    """Rendered semantics: accumulated logits; weighted cross-entropy on the accumulated logits.

    Args:
        loss_weight: multiplier of ``loss_render_semantics``. Defaults to 1.0.
    """

    loss_name = 'loss_render_semantics'
    target_key = 'semantics'

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def loss(self, pred: Tensor, labels: Tensor, ray_weights: Tensor) -> Tensor:
        """Weighted CE.

        Args:
            pred: (R, K) rendered logits (softmax is applied to the accumulated logits).
            labels: (R,) classes 0..K-1 (cast to int64).
            ray_weights: (R,) class weight of each ray.

        Returns:
            scalar: loss_weight * mean_r(w_r * CE_r).
        """
        ce = F.cross_entropy(pred, labels.long(), reduction='none')  # (R,)
        return self.loss_weight * (ray_weights * ce).mean()
