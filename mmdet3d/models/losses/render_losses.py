"""The class-weighted losses of the rendered rays (spec 3.2 step 4, 3.6).

Each rendered ray is weighted by the class weight of its LiDAR label (``ClassBalancedLogWeights``);
the losses are means over the R rendered rays (divided by R, not by the sum of the weights).
``OccFlowNet`` builds them (``loss_render_depth``, ``loss_render_semantics`` and, on the logits at
each ray's return, ``loss_point_semantics``) and calls them on its selected rays.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class RenderDepthLoss(nn.Module):
    """Weighted squared (or absolute) error of the rendered distance.

    Args:
        loss_weight: multiplier. Defaults to 0.05.
        loss_type: ``'mse'`` (the original) or ``'l1'``. With the squared error a ray's pull
            grows with its error, so the long rays, whose rendered depth errs by metres, outweigh
            the near walls and ground; with L1 every ray pulls equally hard. Defaults to 'mse'.
    """

    LOSS_TYPES = ('mse', 'l1')

    def __init__(self, loss_weight: float = 0.05, loss_type: str = 'mse') -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        if loss_type not in self.LOSS_TYPES:
            raise ValueError(f'depth loss_type must be one of {self.LOSS_TYPES}, got '
                             f'{loss_type!r}')
        self.loss_weight = loss_weight
        self.loss_type = loss_type

    def forward(self, pred: Tensor, depth: Tensor, ray_weights: Tensor) -> Tensor:
        """Compute the loss.

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
class RenderSemanticLoss(nn.Module):
    """Weighted cross-entropy of the rendered (accumulated) logits.

    Args:
        loss_weight: multiplier. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, labels: Tensor, ray_weights: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: (R, K) rendered logits (softmax is applied to the accumulated logits).
            labels: (R,) classes 0..K-1 (cast to int64).
            ray_weights: (R,) class weight of each ray.

        Returns:
            scalar: loss_weight * mean_r(w_r * CE_r).
        """
        ce = F.cross_entropy(pred, labels.long(), reduction='none')  # (R,)
        return self.loss_weight * (ray_weights * ce).mean()
