"""The class-weighted losses of the rendered rays (spec 3.2 step 4, 3.6).

Each rendered ray is weighted by the class weight of its LiDAR label; the losses are means over
the R rendered rays (divided by R, not by the sum of the weights).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ3d import NUM_SEMANTIC_CLASSES

from .class_weights import class_balanced_log_weights


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


class RenderLosses(nn.Module):
    """The render losses of a ``VolumeRenderer``: class weights, depth, semantics, distortion.

    Args:
        class_balanced_loss: weight rays by the class weight of their label.
        class_frequencies: per-class voxel counts (17) of the weights; None: Occ3D-nuScenes'
            table, as the original.
        depth_loss_weight, depth_loss_type: :class:`RenderDepthLoss`.
        semantic_loss_weight: :class:`RenderSemanticLoss`.
        loss_distortion: config of a loss on each rendered ray's distortion (e.g.
            ``DistortionLoss``); None: none, as the original.
        loss_ray_occupancy: config of ``RayOccupancyLoss`` (free before each return, occupied
            at it); None: none, as the original. Defaults to None.
        point_semantic_loss_weight: :class:`RenderSemanticLoss` weight of the logits at each
            rendered ray's return (``loss_point_semantics``); 0: none, as the original.
            Defaults to 0.0.
    """

    def __init__(self, class_balanced_loss: bool, class_frequencies: Sequence[float] | None,
                 depth_loss_weight: float, depth_loss_type: str, semantic_loss_weight: float,
                 loss_distortion: dict | None, loss_ray_occupancy: dict | None = None,
                 point_semantic_loss_weight: float = 0.0) -> None:
        super().__init__()
        if class_frequencies is not None and len(class_frequencies) != NUM_SEMANTIC_CLASSES:
            raise ValueError(f'class_frequencies needs {NUM_SEMANTIC_CLASSES} counts (Occ3D '
                             f'classes 0-{NUM_SEMANTIC_CLASSES - 1}), got {len(class_frequencies)}')
        if not class_balanced_loss:
            weights = torch.ones(NUM_SEMANTIC_CLASSES)
        elif class_frequencies is None:
            weights = class_balanced_log_weights()
        else:
            weights = class_balanced_log_weights(class_frequencies)
        self.register_buffer('class_weights', weights, persistent=False)
        self.depth = RenderDepthLoss(depth_loss_weight, depth_loss_type)
        self.semantics = RenderSemanticLoss(semantic_loss_weight)
        self.distortion = MODELS.build(loss_distortion) if loss_distortion is not None else None
        self.ray_occupancy = (MODELS.build(loss_ray_occupancy)
                              if loss_ray_occupancy is not None else None)
        if point_semantic_loss_weight < 0:
            raise ValueError('point_semantic_loss_weight must be >= 0, got '
                             f'{point_semantic_loss_weight}')
        self.point_semantics = (RenderSemanticLoss(point_semantic_loss_weight)
                                if point_semantic_loss_weight > 0 else None)

    def forward(self, preds: dict[str, Tensor], rays: Sequence[LidarRays]) -> dict[str, Tensor]:
        """Losses of the rendered rays.

        Args:
            preds: ``VolumeRenderer.forward``'s output (``indices`` of the rendered rays into
                the flattened batch, ``depth`` (R_tot, 1), ``semantics`` (R_tot, K), with a
                distortion loss ``distortion`` (R,), with a ray-occupancy loss
                ``ray_occupancy`` = (density, targets, valid) of (R, P), with point semantics
                ``point_semantics`` (R, K)).
            rays: the B samples' rays the renderer was given.

        Returns:
            ``loss_render_depth``, ``loss_render_semantics`` and, with their losses and where
            ``preds`` holds their inputs (renderings outside training, e.g. the diagnostics'
            chunked ones, do not), ``loss_render_distortion``, ``loss_ray_occupancy`` and
            ``loss_point_semantics``.
        """
        indices = preds['indices']
        device = preds['depth'].device
        depth = torch.cat([sample.depth for sample in rays]).to(device)[indices]  # (R,)
        labels = torch.cat([sample.labels for sample in rays]).to(device).long()[indices]
        ray_weights = self.class_weights[labels]  # (R,)
        losses = dict(
            loss_render_depth=self.depth(preds['depth'][indices],
                                         depth.to(preds['depth'].dtype), ray_weights),
            loss_render_semantics=self.semantics(preds['semantics'][indices], labels,
                                                 ray_weights))
        if self.distortion is not None and 'distortion' in preds:
            losses['loss_render_distortion'] = self.distortion(preds['distortion'])
        if self.ray_occupancy is not None and 'ray_occupancy' in preds:
            losses['loss_ray_occupancy'] = self.ray_occupancy(*preds['ray_occupancy'])
        if self.point_semantics is not None and 'point_semantics' in preds:
            losses['loss_point_semantics'] = self.point_semantics(preds['point_semantics'],
                                                                  labels, ray_weights)
        return losses
