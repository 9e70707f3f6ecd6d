"""Depth-distribution supervision of the view transformer (spec 2.7.5)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

EMPTY_DEPTH = 1e5


def downsample_gt_depth(gt_depth: Tensor, downsample: int, depth_cfg: Sequence[float],
                        num_bins: int, sid: bool = False) -> Tensor:
    """One-hot depth-bin targets of every ``downsample`` x ``downsample`` image patch.

    Each patch takes its minimum non-zero depth (0 = no LiDAR point; an empty patch gets 1e5).
    Its bin index is ``q = (d - (lo - step)) / step``, truncated to an integer (so bin j covers
    ``[lo + j step, lo + (j + 1) step)``), or the SID equivalent; ``q`` outside ``[0, D + 1)``
    becomes 0. One-hot over D + 1 classes, class 0 dropped: empty or out-of-range patches give
    all-zero rows.

    Args:
        gt_depth: (B, N, H, W) sparse camera z-depth in metres, 0 where no point.
        downsample: patch size (the feature stride, 16).
        depth_cfg: ``[lo, hi, step]`` of the depth bins.
        num_bins: D.
        sid: spacing-increasing bins. Defaults to False.

    Returns:
        (B*N*h*w, D) float32 0/1, rows ordered (b, n, row, column).
    """
    batch, cams, height, width = gt_depth.shape
    rows, cols = height // downsample, width // downsample
    patches = gt_depth.view(batch * cams, rows, downsample, cols, downsample)
    # (B*N, h, s, w, s) -> (B*N, h, w, s, s) -> (B*N*h*w, s*s)
    patches = patches.permute(0, 1, 3, 2, 4).reshape(-1, downsample * downsample)
    patches = torch.where(patches == 0.0, torch.full_like(patches, EMPTY_DEPTH), patches)
    depth = patches.min(dim=-1).values  # (B*N*h*w,)
    lo, hi, step = depth_cfg
    if sid:
        depth = (torch.log(depth) - math.log(lo)) * (num_bins - 1) / math.log((hi - 1.0) / lo) + 1.0
    else:
        depth = (depth - (lo - step)) / step
    depth = torch.where((depth < num_bins + 1) & (depth >= 0.0), depth, torch.zeros_like(depth))
    one_hot = F.one_hot(depth.long(), num_classes=num_bins + 1)  # (B*N*h*w, D + 1)
    return one_hot[:, 1:].float()


def depth_bce_loss(depth_labels: Tensor, depth_preds: Tensor, loss_weight: float) -> Tensor:
    """Weighted binary cross-entropy of the depth distribution over foreground patches.

    ``loss_weight * sum_{fg patches, bins} BCE(p, y) / max(1, #fg patches)``, computed in float32
    with autocast disabled.

    Args:
        depth_labels: (M, D) one-hot targets of :func:`downsample_gt_depth` (M = B*N*h*w).
        depth_preds: (B*N, D, h, w) softmax depth distribution.
        loss_weight: factor (0.05 in the configs).

    Returns:
        () loss.
    """
    num_bins = depth_preds.shape[1]
    with torch.autocast(device_type=depth_preds.device.type, enabled=False):
        # (B*N, D, h, w) -> (B*N, h, w, D) -> (M, D)
        preds = depth_preds.float().permute(0, 2, 3, 1).reshape(-1, num_bins)
        labels = depth_labels.float()
        foreground = labels.max(dim=1).values > 0.0  # (M,)
        bce = F.binary_cross_entropy(preds[foreground], labels[foreground], reduction='none')
        loss = bce.sum() / foreground.sum().clamp(min=1)
    return loss_weight * loss
