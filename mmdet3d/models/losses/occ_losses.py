"""3-D voxel losses of the ``_2d_flow_3d`` variant (spec 2.10 step 4, use_mask=False)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures.occ3d import FREE_LABEL


@MODELS.register_module()
class OccDensityBCELoss(nn.Module):
    """BCE between predicted density (probability) and occupancy, averaged over all voxels.

    occupied = (label != free_label); camera-invisible voxels (labelled free by Occ3D) count.

    Args:
        loss_weight: multiplier. Defaults to 1.0.
        free_label: the Occ3D free class. Defaults to 17.
    """

    def __init__(self, loss_weight: float = 1.0, free_label: int = FREE_LABEL) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.free_label = free_label

    def forward(self, density: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            density: (B, X, Y, Z, 1) or (B, X, Y, Z) sigmoid density in (0, 1).
            labels: (B, X, Y, Z) Occ3D labels 0..17 (any integer dtype).

        Returns:
            scalar loss.
        """
        occupied = (labels.long() != self.free_label).float().reshape(-1)  # (V,)
        # BCE on probabilities is unsafe under autocast: compute it in float32.
        with torch.autocast(device_type=density.device.type, enabled=False):
            loss = F.binary_cross_entropy(density.float().reshape(-1), occupied)
        return self.loss_weight * loss


@MODELS.register_module()
class OccSemanticCELoss(nn.Module):
    """Cross-entropy of the semantic logits, averaged over occupied voxels only.

    An empty set of occupied voxels gives 0 (the original's empty mean is NaN).

    Args:
        loss_weight: multiplier. Defaults to 1.0.
        free_label: the Occ3D free class. Defaults to 17.
    """

    def __init__(self, loss_weight: float = 1.0, free_label: int = FREE_LABEL) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.free_label = free_label

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            logits: (B, X, Y, Z, K) raw logits, K = 17.
            labels: (B, X, Y, Z) Occ3D labels 0..17 (any integer dtype).

        Returns:
            scalar loss.
        """
        logits = logits.reshape(-1, logits.shape[-1])  # (B, X, Y, Z, K) -> (V, K)
        labels = labels.reshape(-1).long()  # (B, X, Y, Z) -> (V,)
        occupied = labels != self.free_label
        if not bool(occupied.any()):
            return logits.sum() * 0.0
        return self.loss_weight * F.cross_entropy(logits[occupied], labels[occupied])
