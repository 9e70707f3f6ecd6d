"""``OccMetric``: Occ3D-nuScenes mIoU over a split, one confusion matrix per threshold (spec 6)."""
from __future__ import annotations

import logging
import os
import os.path as osp
import shutil
import sys
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet3d.formats.occ_predictions import check_prediction_dir, count_files, save_occ_prediction
from mmdet3d.registry import METRICS
from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL, NUM_CLASSES

from mmdet3d.utils.file_io import current_umask

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
            the first threshold's labels) for every sample; see "Saving" below. Defaults to
            None.
        overwrite: replace a non-empty ``save_dir`` as a whole; without it such a folder (or a
            non-empty ``<save_dir>.partial``) is refused at construction. Defaults to False.
        format_only: only save predictions (needs ``save_dir``); no GT is read and no metric
            is returned. Defaults to False.
        collect_device: mmengine result gathering device. Defaults to 'cpu'.
        prefix: metric-key prefix; '' keeps the original's bare keys. Defaults to ''.
        collect_dir: mmengine gathering folder for ``collect_device='cpu'``. Defaults to None.

    Saving: at construction rank 0 checks ``save_dir`` (:func:`check_prediction_dir`) and
    creates a new staging folder ``<save_dir>.partial-XXXXXXXX`` beside it
    (``tempfile.mkdtemp``), whose name it broadcasts, so that every rank writes its samples
    there (the ranks must share the filesystem). Once the split is predicted,
    ``compute_metrics`` (rank 0) checks that every collected prediction is there and renames
    the staging folder to ``save_dir``; an existing ``save_dir`` (empty, written by this
    metric's previous evaluation, or replaced under ``overwrite``) is first renamed aside into
    another new folder, which is deleted after the swap. So ``save_dir`` holds exactly one
    run's predictions, and the only folders ever deleted are those this metric created and the
    replaced ``save_dir``. When the run fails, ``save_dir`` is untouched and the staging folder
    is left as it is (never reused), with a message naming it when the process ends; an empty
    one is removed. A later evaluation (validation during training) stages into a new folder.
    """

    default_prefix = ''

    def __init__(self,
                 use_image_mask: bool = True,
                 use_lidar_mask: bool = False,
                 num_classes: int = NUM_CLASSES,
                 path_prefix: str | None = None,
                 save_dir: str | None = None,
                 overwrite: bool = False,
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
        self.save_dir = None if save_dir is None else osp.normpath(save_dir)
        self.format_only = format_only
        self.overwrite = overwrite
        self._owns_save_dir = False  # save_dir was published by this metric
        self._staging: str | None = None
        if self.save_dir is not None:
            self._staging = self._new_staging_dir()

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
                if self._staging is None:  # compute_metrics called directly, without evaluate
                    self._staging = self._new_staging_dir()
                staged = save_occ_prediction(self._staging,
                                             str(sample.get('scene_name', 'unknown')),
                                             str(token), pred[0])
                saved = osp.relpath(staged, self._staging)
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
    def staging_dir(self) -> str | None:
        """The folder this evaluation's predictions wait in until the split is predicted."""
        return self._staging

    def _new_staging_dir(self, announce: bool = True) -> str:
        """Rank 0 checks ``save_dir`` and creates a staging folder; every rank returns its name.

        A collective call: every rank must make it (construction and :meth:`evaluate`).
        ``announce`` logs the folder (not for the one prepared for a possible next evaluation).
        """
        answer: list = [None]
        if is_main_process():
            try:
                if not self._owns_save_dir:
                    check_prediction_dir(self.save_dir, self.overwrite)
                parent, name = osp.split(osp.abspath(self.save_dir))
                os.makedirs(parent, exist_ok=True)
                staging = tempfile.mkdtemp(prefix=f'{name}.partial-', dir=parent)
                os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would stay
                answer = [('ok', staging)]
            except OSError as error:
                answer = [(type(error).__name__, str(error))]
        broadcast_object_list(answer, src=0)
        status, value = answer[0]
        if status != 'ok':
            error = {'FileExistsError': FileExistsError,
                     'NotADirectoryError': NotADirectoryError}.get(status, OSError)
            raise error(f'OccMetric save_dir: {value}')
        if is_main_process():
            weakref.finalize(self, _report_unpublished, value, self.save_dir)
            if announce:
                print_log(f'OccMetric: predictions are staged in {value} and become '
                          f'{self.save_dir} once the split is predicted', logger='current')
        return value

    def _publish_predictions(self, results: list[dict]) -> None:
        """Make the staging folder ``save_dir`` (see "Saving" in the class docstring)."""
        staging, save_dir = self._staging, self.save_dir
        if staging is None or not osp.isdir(staging):
            raise RuntimeError(f'OccMetric: the staging folder {staging} of {save_dir} is gone; '
                               'were these predictions published already?')
        missing = [r['saved'] for r in results
                   if not osp.isfile(osp.join(staging, r['saved']))]
        if missing:
            raise FileNotFoundError(
                f'OccMetric: {len(missing)} of {len(results)} predictions are not in the '
                f'staging folder {staging} (e.g. {missing[0]}); do all ranks share its '
                f'filesystem? {save_dir} is untouched; the staging folder is left')
        replaced = None
        if osp.lexists(save_dir):
            replaced = count_files(save_dir)
            if replaced and not (self.overwrite or self._owns_save_dir):
                raise FileExistsError(
                    f'OccMetric: {save_dir} received {replaced} files during the run; it is '
                    f'left as it is and the predictions stay in {staging} (pass --overwrite / '
                    'overwrite=True to replace it)')
            _swap_in(staging, save_dir)
        else:
            os.rename(staging, save_dir)
        self._staging, self._owns_save_dir = None, True
        what = '' if replaced is None else (
            f' (replaced the previous {save_dir}: {replaced} files)' if replaced else
            f' (replaced the empty folder {save_dir})')
        print_log(f'OccMetric: {len(results)} predictions written to {save_dir}{what}',
                  logger='current', level=logging.WARNING if replaced else logging.INFO)

    def evaluate(self, size: int) -> dict:
        """mmengine's evaluation; then, on every rank, a new staging folder for the next one."""
        metrics = super().evaluate(size)
        if self.save_dir is not None:
            self._staging = self._new_staging_dir(announce=False)
        return metrics

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


def _swap_in(staging: str, save_dir: str) -> None:
    """Rename ``staging`` to ``save_dir``, moving the existing ``save_dir`` aside into a new
    folder first and deleting that folder afterwards; on a failed rename the old one is put
    back."""
    parent, name = osp.split(osp.abspath(save_dir))
    aside = tempfile.mkdtemp(prefix=f'{name}.replaced-', dir=parent)
    old = osp.join(aside, name)
    os.rename(save_dir, old)
    try:
        os.rename(staging, save_dir)
    except BaseException:
        os.rename(old, save_dir)
        os.rmdir(aside)
        raise
    shutil.rmtree(aside)


def _report_unpublished(staging: str, save_dir: str) -> None:
    """At the end of the metric (or of the process): remove the staging folder if it is empty;
    else say where the predictions of the unfinished evaluation are."""
    if not osp.isdir(staging):
        return
    try:
        os.rmdir(staging)  # only succeeds when empty
        return
    except OSError:
        pass
    sys.stderr.write(
        f'OccMetric: the evaluation ended before its predictions were published; {save_dir} '
        f'is untouched and the {count_files(staging)} files predicted so far are left in '
        f'{staging} (created by this run; delete it when no longer needed)\n')
