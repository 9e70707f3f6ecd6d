"""``OccMetric``: Occ3D-nuScenes mIoU over a split, one confusion matrix per threshold (spec 6)."""
from __future__ import annotations

import os
import os.path as osp
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet3d.registry import METRICS
from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL, NUM_CLASSES

from ..functional.occ_io import save_occ_prediction
from ..functional.occ_miou import format_iou_report, occ_confusion_matrix, occ_miou, threshold_key
from .occ_sample import as_mapping, predicted_labels, sample_ground_truth, to_numpy


@METRICS.register_module()
class OccMetric(BaseMetric):
    """Semantic occupancy mIoU with the Occ3D camera mask.

    ``process`` reads each predicted sample's ``pred_occ`` ((n_tau, X, Y, Z) uint8, 17 = free)
    and metainfo ``eval_thresholds`` (n_tau floats), takes the GT from ``gt_occ`` if present,
    else from ``<occ_path>/labels.npz``, and stores the per-sample (n_tau, 18, 18) confusion
    matrices (cheap to gather across ranks; padded duplicates are dropped by mmengine).
    ``compute_metrics`` sums them over the split and returns ``{'mIoU_<tau>': ...,
    'top_mIoU': ...}`` (percent, 2 decimals), logging the original's per-class report.

    Args:
        use_image_mask: count only ``mask_camera`` voxels. Defaults to True.
        use_lidar_mask: count only ``mask_lidar`` voxels (combined with the camera mask if
            both are set). Defaults to False.
        num_classes: labels in the confusion matrix (free included). Defaults to 18.
        path_prefix: joined to a relative ``occ_path``; None uses it as given. Defaults to None.
        save_dir: if set, write ``<save_dir>/<scene_name>/<sample_idx>.npz`` (key ``semantics``,
            the first threshold's labels) for every sample. The files are written into
            ``<save_dir>.partial`` and moved into ``save_dir`` once every sample is predicted,
            so that a failed run never leaves ``save_dir`` partial. Defaults to None.
        format_only: only save predictions (needs ``save_dir``); no GT is read and no metric
            is returned. Defaults to False.
        collect_device: mmengine result gathering device. Defaults to 'cpu'.
        prefix: metric-key prefix; '' keeps the original's bare keys. Defaults to ''.
        collect_dir: mmengine gathering folder for ``collect_device='cpu'``. Defaults to None.
    """

    default_prefix = ''

    def __init__(self,
                 use_image_mask: bool = True,
                 use_lidar_mask: bool = False,
                 num_classes: int = NUM_CLASSES,
                 path_prefix: str | None = None,
                 save_dir: str | None = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: str = '',
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if format_only and save_dir is None:
            raise ValueError('OccMetric: format_only=True needs save_dir')
        self.use_image_mask = use_image_mask
        self.use_lidar_mask = use_lidar_mask
        self.num_classes = num_classes
        self.path_prefix = path_prefix
        self.save_dir = save_dir
        self.format_only = format_only

    def process(self, data_batch: Any, data_samples: Sequence[Mapping | BaseDataElement]) -> None:
        """Confusion matrices of a batch of predicted samples (see class docstring)."""
        for sample in map(as_mapping, data_samples):
            token = sample.get('sample_idx', '?')
            pred = to_numpy(predicted_labels(sample, 'OccMetric'))
            thresholds = tuple(float(t) for t in sample.get('eval_thresholds', ()))
            if len(thresholds) != pred.shape[0]:
                raise ValueError(f'OccMetric: sample {token} has {pred.shape[0]} predictions '
                                 f'but eval_thresholds={list(thresholds)} in its metainfo')
            saved = None
            if self.save_dir is not None:
                staged = save_occ_prediction(self.staging_dir,
                                             str(sample.get('scene_name', 'unknown')),
                                             str(token), pred[0])
                saved = osp.relpath(staged, self.staging_dir)
            if self.format_only:
                self.results.append(dict(thresholds=thresholds, hists=None, saved=saved))
                continue
            needed = ['semantics'] + (['mask_camera'] if self.use_image_mask else []) + (
                ['mask_lidar'] if self.use_lidar_mask else [])
            gt = sample_ground_truth(sample, needed, pred.shape[1:], self.path_prefix,
                                     'OccMetric')
            mask = np.ones(gt['semantics'].shape, dtype=bool)
            if self.use_image_mask:
                mask &= gt['mask_camera'].astype(bool)
            if self.use_lidar_mask:
                mask &= gt['mask_lidar'].astype(bool)
            hists = np.stack([
                occ_confusion_matrix(gt['semantics'], p, mask, self.num_classes) for p in pred])
            self.results.append(dict(thresholds=thresholds, hists=hists, saved=saved))

    @property
    def staging_dir(self) -> str:
        """Where predictions wait until the whole split is predicted."""
        return osp.normpath(self.save_dir) + '.partial'

    def _publish_predictions(self, results: list[dict]) -> None:
        """Move this run's predictions from :attr:`staging_dir` into ``save_dir``."""
        for rel in (r['saved'] for r in results):
            target = osp.join(self.save_dir, rel)
            os.makedirs(osp.dirname(target), exist_ok=True)
            os.replace(osp.join(self.staging_dir, rel), target)
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Sum the confusion matrices over the split and compute mIoU per threshold."""
        if self.save_dir is not None:
            self._publish_predictions(results)
        if self.format_only:
            print_log(f'OccMetric: saved {len(results)} predictions to {self.save_dir}',
                      logger='current')
            return {}
        thresholds = results[0]['thresholds']
        if any(r['thresholds'] != thresholds for r in results):
            raise ValueError('OccMetric: samples were predicted with different eval_thresholds')
        total = np.sum([r['hists'] for r in results], axis=0)  # (n_tau, C, C)
        class_names = CLASS_NAMES
        if self.dataset_meta and len(self.dataset_meta.get('classes', ())) >= FREE_LABEL:
            class_names = tuple(self.dataset_meta['classes'])
        metrics: dict[str, float] = {}
        for tau, hist in zip(thresholds, total):
            print_log(f'===> density threshold {tau:g}:\n'
                      + format_iou_report(hist, class_names, len(results)), logger='current')
            metrics[threshold_key(tau)] = occ_miou(hist)
        metrics['top_mIoU'] = float(np.nanmax(list(metrics.values())))
        return metrics
