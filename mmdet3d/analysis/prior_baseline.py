"""The non-learned "prior" occupancy predictor: per voxel, the most frequent training label.

A learned model has to beat this to show that it uses its camera input: the prior sees no
image and predicts the same volume for every sample — for each voxel position the label
(0-16 semantic, 17 free) that occurs most often there over the train split's Occ3D ground truth.
It is evaluated with the same :class:`~mmdet3d.evaluation.metrics.occ_metric.OccMetric` as the
models (camera mask by default) and, on request, with the same
:class:`~mmdet3d.evaluation.metrics.ray_iou_metric.RayIoUMetric`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from mmengine.evaluator import BaseMetric

from mmdet3d.evaluation.functional.ray_iou import ArrayLike
from mmdet3d.evaluation.metrics.occ_metric import OccMetric
from mmdet3d.evaluation.metrics.ray_iou_metric import RayIoUMetric
from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.formats.occ3d_labels import info_occ_path, load_occ_gt
from mmdet3d.structures.occ3d import NUM_CLASSES

Progress = Callable[[Iterable], Iterable]


def most_frequent_labels(volumes: Iterable[np.ndarray],
                         num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-voxel mode of a stack of label volumes.

    Ties go to the smallest label (``argmax`` order), so 'free' (17) wins only outright.

    Args:
        volumes: (X, Y, Z) integer label volumes in ``[0, num_classes)``, all of one shape.
        num_classes: number of labels. Defaults to 18.

    Returns:
        (X, Y, Z) uint8 labels.

    Raises:
        ValueError: no volume, differing shapes or labels outside ``[0, num_classes)``.
    """
    counts: np.ndarray | None = None
    for i, volume in enumerate(volumes):
        volume = np.asarray(volume)
        if counts is None:
            counts = np.zeros((num_classes, *volume.shape), dtype=np.int32)  # (C, X, Y, Z)
        if volume.shape != counts.shape[1:]:
            raise ValueError(f'volume {i} has shape {volume.shape}, expected {counts.shape[1:]}')
        if volume.size and (volume.min() < 0 or volume.max() >= num_classes):
            raise ValueError(f'volume {i} has labels outside [0, {num_classes})')
        flat = volume.reshape(-1).astype(np.int64)
        counts.reshape(num_classes, -1)[flat, np.arange(flat.size)] += 1
    if counts is None:
        raise ValueError('most_frequent_labels needs at least one volume')
    return counts.argmax(axis=0).astype(np.uint8)


def fit_prior(ann_file: str, path_prefix: str | None = None) -> tuple[np.ndarray, int]:
    """The prior volume of a split: per-voxel mode of its Occ3D ``semantics``.

    Args:
        ann_file: info pkl of the split (its infos' ``occ_path``).
        path_prefix: joined to relative ``occ_path``; None keeps them relative to the working
            directory. Defaults to None.

    Returns:
        (X, Y, Z) uint8 prior labels and the number of samples it was fitted on.
    """
    infos, _ = load_infos(ann_file)
    if not infos:
        raise ValueError(f'{ann_file} holds no samples')
    volumes = (load_occ_gt(info_occ_path(info, path_prefix, ann_file),
                           info.get('token'))['semantics'] for info in infos)
    return most_frequent_labels(volumes), len(infos)


def _evaluate_constant(prediction: np.ndarray, ann_file: str, metric: BaseMetric,
                       progress: Progress = iter) -> tuple[dict[str, float], int]:
    """``metric`` over every sample of a split, each predicted as ``prediction`` (X, Y, Z)."""
    infos, _ = load_infos(ann_file)
    if not infos:
        raise ValueError(f'{ann_file} holds no samples')
    pred = np.asarray(prediction, dtype=np.uint8)[None]  # (1, X, Y, Z): one "threshold"
    for info in progress(infos):
        metric.process(None, [dict(pred_occ=pred, eval_thresholds=[0.0],
                                   sample_idx=info.get('token', '?'),
                                   occ_path=info_occ_path(info, None, ann_file))])
    return metric.compute_metrics(metric.results), len(infos)


def evaluate_prior(prior: np.ndarray,
                   ann_file: str,
                   path_prefix: str | None = None,
                   use_image_mask: bool = True) -> tuple[dict[str, float], int]:
    """Evaluate the constant prediction ``prior`` on every sample of a split with ``OccMetric``.

    Args:
        prior: (X, Y, Z) labels (17 = free) predicted for every sample.
        ann_file: info pkl of the evaluated split.
        path_prefix: as in :func:`fit_prior`. Defaults to None.
        use_image_mask: count only camera-visible voxels (the benchmark). Defaults to True.

    Returns:
        ``OccMetric``'s metrics (``mIoU_<tau>`` for a nominal tau of 0 and ``top_mIoU``, which
        is the mIoU) and the number of evaluated samples. The per-class table is logged.
    """
    metric = OccMetric(use_image_mask=use_image_mask, path_prefix=path_prefix)
    return _evaluate_constant(prior, ann_file, metric)


def evaluate_prior_ray_iou(prior: np.ndarray,
                           ann_file: str,
                           path_prefix: str | None = None,
                           progress: Progress = iter,
                           directions: ArrayLike | None = None
                           ) -> tuple[dict[str, float], int]:
    """Evaluate the constant prediction ``prior`` on every sample of a split with
    ``RayIoUMetric`` (the infos need the keyframe poses).

    Args:
        prior, ann_file, path_prefix: as in :func:`evaluate_prior`.
        progress: wraps the sample loop, e.g. ``tqdm``. Defaults to ``iter``.
        directions: (K, 3) ray directions; None: the 14,040 LiDAR rays. Defaults to None.

    Returns:
        ``RayIoUMetric``'s metrics (``RayIoU@1``, ``@2``, ``@4``, ``RayIoU``) and the number of
        evaluated samples. The per-class table is logged.
    """
    metric = RayIoUMetric(ann_file, path_prefix=path_prefix, directions=directions)
    return _evaluate_constant(prior, ann_file, metric, progress)


def prior_miou(train_ann_file: str,
               val_ann_file: str,
               path_prefix: str | None = None,
               use_image_mask: bool = True) -> float:
    """mIoU (percent) on ``val_ann_file`` of the prior fitted on ``train_ann_file``."""
    prior, _ = fit_prior(train_ann_file, path_prefix)
    metrics, _ = evaluate_prior(prior, val_ann_file, path_prefix, use_image_mask)
    return metrics['top_mIoU']


__all__ = ['most_frequent_labels', 'fit_prior', 'evaluate_prior', 'evaluate_prior_ray_iou',
           'prior_miou']
