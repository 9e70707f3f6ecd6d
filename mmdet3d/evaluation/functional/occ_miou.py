"""Occ3D-nuScenes semantic occupancy mIoU as pure numpy functions (spec section 6).

The confusion matrix is ``hist[gt, pred]`` over the 18 Occ3D labels (0-16 semantic, 17 free),
counted only on voxels selected by a mask (the camera mask in the benchmark). Matrices of
several samples are summed before the IoU is taken, so the split's mIoU is *not* the mean of
per-sample mIoUs.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL, NUM_CLASSES


def occ_confusion_matrix(gt: np.ndarray,
                         pred: np.ndarray,
                         mask: np.ndarray | None = None,
                         num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Confusion matrix ``hist[gt, pred]`` of one sample.

    Voxels outside ``mask`` and voxels whose GT is not in ``[0, num_classes)`` are ignored.

    Args:
        gt: (X, Y, Z) integer GT labels.
        pred: (X, Y, Z) integer predicted labels in ``[0, num_classes)``.
        mask: (X, Y, Z) bool/0-1 voxel selection (e.g. ``mask_camera``); None keeps all voxels.
            Defaults to None.
        num_classes: number of labels. Defaults to 18.

    Returns:
        (num_classes, num_classes) int64 matrix; rows are GT labels, columns predictions.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'GT shape {gt.shape} and prediction shape {pred.shape} differ')
    keep = np.ones(gt.shape, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
    if keep.shape != gt.shape:
        raise ValueError(f'mask shape {keep.shape} differs from GT shape {gt.shape}')
    gt = gt[keep].astype(np.int64)
    pred = pred[keep].astype(np.int64)
    valid = (gt >= 0) & (gt < num_classes)
    gt, pred = gt[valid], pred[valid]
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f'predicted labels must lie in [0, {num_classes}), got range '
                         f'[{pred.min()}, {pred.max()}]')
    counts = np.bincount(num_classes * gt + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def per_class_iou(hist: np.ndarray) -> np.ndarray:
    """IoU_c = TP / (TP + FP + FN) from a confusion matrix.

    Args:
        hist: (C, C) confusion matrix ``hist[gt, pred]``.

    Returns:
        (C,) float64 IoUs in [0, 1]; NaN for a class absent from both GT and prediction.
    """
    hist = np.asarray(hist, dtype=np.float64)
    tp = np.diag(hist)
    union = hist.sum(axis=1) + hist.sum(axis=0) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        return tp / union


def occ_miou(hist: np.ndarray, num_semantic: int = FREE_LABEL) -> float:
    """The Occ3D mIoU: NaN-mean IoU of classes ``0 .. num_semantic-1`` in percent, 2 decimals.

    'free' (17) is excluded and 'others' (0) included, as in the benchmark.

    Args:
        hist: (C, C) confusion matrix accumulated over the split.
        num_semantic: number of leading classes averaged. Defaults to 17.

    Returns:
        mIoU * 100 rounded to 2 decimals (NaN if no class occurs at all).
    """
    ious = per_class_iou(hist)[:num_semantic]
    if np.all(np.isnan(ious)):
        return float('nan')
    return round(float(np.nanmean(ious)) * 100, 2)


def format_iou_report(hist: np.ndarray,
                      class_names: Sequence[str] = CLASS_NAMES,
                      num_samples: int | None = None,
                      num_semantic: int = FREE_LABEL) -> str:
    """The original's printout: one ``===> <name> - IoU = x.xx`` line per semantic class.

    Args:
        hist: (C, C) accumulated confusion matrix.
        class_names: at least ``num_semantic`` names. Defaults to the Occ3D names.
        num_samples: number of evaluated samples shown in the header. Defaults to None.
        num_semantic: number of classes reported. Defaults to 17.

    Returns:
        The multi-line report, ending with ``===> mIoU of N samples: x.xx``.
    """
    if len(class_names) < num_semantic:
        raise ValueError(f'need {num_semantic} class names, got {len(class_names)}')
    ious = per_class_iou(hist)
    n = '?' if num_samples is None else str(num_samples)
    lines = [f'===> per class IoU of {n} samples:']
    lines += [f'===> {class_names[c]} - IoU = {ious[c] * 100:.2f}' for c in range(num_semantic)]
    lines.append(f'===> mIoU of {n} samples: {occ_miou(hist, num_semantic):.2f}')
    return '\n'.join(lines)


def threshold_key(tau: float) -> str:
    """Metric key of a density threshold, e.g. 0.35 -> ``'mIoU_0.35'`` (float32 noise removed)."""
    return f'mIoU_{round(float(tau), 6):g}'
