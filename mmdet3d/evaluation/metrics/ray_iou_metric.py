"""``RayIoUMetric``: SparseOcc's RayIoU over a split (``functional/ray_iou.py``)."""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet3d.registry import METRICS

from ..functional.ray_iou import ArrayLike, RayIoUAccumulator
from ..functional.ray_origins import load_ray_origins
from .occ_sample import as_mapping, predicted_labels, sample_ground_truth


@METRICS.register_module()
class RayIoUMetric(BaseMetric):
    """RayIoU@1/2/4 m and their mean, in percent, over the 17 Occ3D semantic classes.

    ``process`` takes each sample's ``pred_occ[0]`` (the first density threshold's labels, the
    volume ``tools/test.py --out`` saves, so that ``tools/eval_ray_iou.py`` on those files
    gives the same numbers), its GT semantics (``gt_occ`` or ``<occ_path>/labels.npz``, no
    visibility mask: RayIoU's rays decide what is seen) and its ray origins, casts the rays
    on the prediction's device and stores the sample's counts: TP (3, 17), GT (17,) and
    Pred (17,) int64 rays (cheap to gather across ranks). ``compute_metrics`` sums them, logs
    the per-class table and returns ``RayIoU@1``, ``RayIoU@2``, ``RayIoU@4`` and ``RayIoU``.

    Ray origins are computed once, in the constructor, from the keyframe poses of ``ann_file``
    (:func:`~..functional.ray_origins.load_ray_origins`): the metric needs the whole scene of a
    sample, which no single data sample carries.

    Args:
        ann_file: info pkl of the evaluated split (the test dataset's ``ann_file``).
        data_root: joined to a relative ``ann_file`` (as the dataset does). Defaults to ''.
        path_prefix: joined to a relative ``occ_path``; None uses it as given. Defaults to None.
        directions: (K, 3) ray directions; None: SparseOcc's 14,040 LiDAR rays. Defaults to None.
        collect_device: mmengine result gathering device. Defaults to 'cpu'.
        prefix: metric-key prefix; '' keeps bare keys. Defaults to ''.
        collect_dir: mmengine gathering folder for ``collect_device='cpu'``. Defaults to None.
    """

    default_prefix = ''

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 path_prefix: str | None = None,
                 directions: ArrayLike | None = None,
                 collect_device: str = 'cpu',
                 prefix: str = '',
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.ann_file = osp.join(data_root, ann_file)
        self.path_prefix = path_prefix
        self.directions = directions
        self.origins = load_ray_origins(self.ann_file)

    def _accumulator(self) -> RayIoUAccumulator:
        return RayIoUAccumulator(directions=self.directions)

    def process(self, data_batch: Any, data_samples: Sequence[Mapping | BaseDataElement]) -> None:
        """RayIoU counts of a batch of predicted samples (see class docstring)."""
        for sample in map(as_mapping, data_samples):
            token = sample.get('sample_idx', '?')
            if token not in self.origins:
                raise KeyError(f'RayIoUMetric: sample {token} is not in {self.ann_file}, which '
                               'gives the ray origins')
            pred = predicted_labels(sample, 'RayIoUMetric')[0]
            gt = sample_ground_truth(sample, ['semantics'], tuple(pred.shape), self.path_prefix,
                                     'RayIoUMetric')
            accumulator = self._accumulator()
            accumulator.add(pred, gt['semantics'], self.origins[token])
            self.results.append(dict(true_positives=accumulator.true_positives,
                                     gt_counts=accumulator.gt_counts,
                                     pred_counts=accumulator.pred_counts))

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Sum the counts over the split; log the table; return the means."""
        total = self._accumulator()
        for key in ('true_positives', 'gt_counts', 'pred_counts'):
            setattr(total, key, np.sum([r[key] for r in results], axis=0))
        print_log(total.report(len(results)), logger='current')
        metrics = total.compute()
        keys = [f'RayIoU@{t:g}' for t in total.thresholds] + ['RayIoU']
        return {key: metrics[key] for key in keys}
