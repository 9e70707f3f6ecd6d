"""Occ3D mIoU: hand-computed confusion cases, OccMetric GT sources, saving and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmdet3d.evaluation.functional.occ_miou import (format_iou_report, occ_confusion_matrix,
                                                    occ_miou, per_class_iou, threshold_key)
from mmdet3d.evaluation.metrics.occ_metric import OccMetric
from mmdet3d.registry import METRICS
from mmdet3d.structures import OccDataSample


def _vol(labels):
    """Put a flat label list into a (len, 1, 1) volume."""
    return np.asarray(labels, dtype=np.uint8).reshape(-1, 1, 1)


def _sample(gt, pred, mask=None, thresholds=(0.35, ), token='tok', scene='scene-0001'):
    gt = _vol(gt)
    mask = np.ones_like(gt) if mask is None else _vol(mask)
    pred = np.stack([_vol(p) for p in pred]) if isinstance(pred[0], (list, tuple)) else \
        _vol(pred)[None]
    ds = OccDataSample(metainfo=dict(sample_idx=token, scene_name=scene,
                                     eval_thresholds=list(thresholds)))
    ds.pred_occ = torch.from_numpy(pred)
    ds.gt_occ = dict(semantics=gt, mask_camera=mask, mask_lidar=np.ones_like(gt))
    return ds


def _evaluate(samples, **kwargs):
    metric = OccMetric(**kwargs)
    metric.process({}, [s.to_dict() for s in samples])
    return metric.compute_metrics(metric.results)


def test_confusion_matrix_counts_gt_rows_pred_columns():
    hist = occ_confusion_matrix(_vol([1, 1, 2, 2]), _vol([1, 1, 2, 1]))
    expected = np.zeros((18, 18), np.int64)
    expected[1, 1], expected[2, 2], expected[2, 1] = 2, 1, 1
    np.testing.assert_array_equal(hist, expected)


def test_perfect_prediction_is_100():
    labels = [0, 4, 4, 11, 16, 17, 17]
    assert _evaluate([_sample(labels, labels)]) == {'mIoU_0.35': 100.0, 'top_mIoU': 100.0}


def test_all_free_prediction():
    gt = [4, 4, 11, 17, 17, 17]
    hist = occ_confusion_matrix(_vol(gt), _vol([17] * 6))
    ious = per_class_iou(hist)
    assert ious[4] == 0 and ious[11] == 0            # missed entirely
    assert ious[17] == pytest.approx(3 / 6)           # free: TP 3, FP 3 (the 4s and the 11)
    assert np.isnan(ious[[0, 1, 2, 3, 5, 16]]).all()  # absent from GT and prediction
    assert occ_miou(hist) == 0.0                      # free is not part of the mean


def test_absent_class_is_nan_and_excluded_but_false_positive_class_counts_zero():
    # classes 1, 2 in GT: IoU1 = 2 / (2 + 1 FP) = 2/3, IoU2 = 1 / (1 + 1 FN) = 1/2
    hist = occ_confusion_matrix(_vol([1, 1, 2, 2]), _vol([1, 1, 2, 1]))
    assert occ_miou(hist) == round((2 / 3 + 1 / 2) / 2 * 100, 2) == 58.33
    # predicting class 3, absent from GT, adds IoU3 = 0 to the mean (TP 0, FP 1)
    hist = occ_confusion_matrix(_vol([1, 1, 2, 2, 1]), _vol([1, 1, 2, 1, 3]))
    # IoU1 = 2 / (3 GT + 3 pred - 2) = 1/2; IoU2 = 1/2; IoU3 = 0
    assert occ_miou(hist) == round((0.5 + 0.5 + 0) / 3 * 100, 2) == 33.33


def test_masked_out_voxels_are_ignored():
    gt = [1, 1, 2, 2, 5, 5]
    pred = [1, 1, 2, 2, 0, 9]  # wrong only where the camera mask is 0
    mask = [1, 1, 1, 1, 0, 0]
    assert _evaluate([_sample(gt, pred, mask)])['mIoU_0.35'] == 100.0
    assert _evaluate([_sample(gt, pred, mask)], use_image_mask=False)['mIoU_0.35'] < 100.0


def test_gt_labels_outside_range_are_ignored():
    hist = occ_confusion_matrix(np.array([1, 255]), np.array([1, 3]))
    assert hist.sum() == 1 and hist[1, 1] == 1


def test_accumulation_over_samples_is_not_the_mean_of_samples():
    a = _sample([1, 1, 1, 1], [1, 1, 1, 1], token='a')  # mIoU 100
    b = _sample([1, 2, 2, 2], [2, 2, 2, 2], token='b')  # IoU1 0, IoU2 3/4 -> 37.5
    assert _evaluate([b])['mIoU_0.35'] == 37.5
    # summed: hist[1,1]=4, hist[1,2]=1, hist[2,2]=3 -> IoU1 = 4/5, IoU2 = 3/4 -> 77.5, not 68.75
    assert _evaluate([a, b])['mIoU_0.35'] == 77.5


def test_one_matrix_per_threshold_and_top_miou():
    gt = [1, 1, 2, 2]
    result = _evaluate([_sample(gt, [[1, 1, 2, 2], [1, 1, 2, 1]], thresholds=(0.3, 0.35))])
    assert result == {'mIoU_0.3': 100.0, 'mIoU_0.35': 58.33, 'top_mIoU': 100.0}


def test_threshold_key_strips_float32_noise():
    assert threshold_key(np.float32(0.35)) == 'mIoU_0.35'
    assert threshold_key(0.3) == 'mIoU_0.3'


def test_report_lines_follow_the_original_format():
    hist = occ_confusion_matrix(_vol([1, 1, 2, 2]), _vol([1, 1, 2, 1]))
    lines = format_iou_report(hist, num_samples=3).splitlines()
    assert lines[0] == '===> per class IoU of 3 samples:'
    assert lines[2] == '===> barrier - IoU = 66.67'
    assert lines[3] == '===> bicycle - IoU = 50.00'
    assert lines[1] == '===> others - IoU = nan'
    assert len(lines) == 19 and lines[-1] == '===> mIoU of 3 samples: 58.33'


def test_gt_from_occ_path_and_saving_predictions(tmp_path):
    gt = np.full((4, 3, 2), 17, np.uint8)
    gt[0] = 4
    occ_dir = tmp_path / 'gts' / 'scene-0007' / 'tok1'
    occ_dir.mkdir(parents=True)
    np.savez_compressed(occ_dir / 'labels.npz', semantics=gt, mask_lidar=np.ones_like(gt),
                        mask_camera=np.ones_like(gt))
    pred = np.stack([gt, np.full_like(gt, 17)])
    ds = OccDataSample(metainfo=dict(sample_idx='tok1', scene_name='scene-0007',
                                     occ_path='gts/scene-0007/tok1', eval_thresholds=[0.2, 0.5]))
    ds.pred_occ = torch.from_numpy(pred)
    metric = METRICS.build(dict(type='OccMetric', path_prefix=str(tmp_path),
                                save_dir=str(tmp_path / 'out')))
    metric.process({}, [ds])
    result = metric.compute_metrics(metric.results)
    assert result == {'mIoU_0.2': 100.0, 'mIoU_0.5': 0.0, 'top_mIoU': 100.0}
    with np.load(tmp_path / 'out' / 'scene-0007' / 'tok1.npz') as saved:
        assert saved.files == ['semantics']
        assert saved['semantics'].dtype == np.uint8
        np.testing.assert_array_equal(saved['semantics'], gt)


def test_missing_gt_file_names_the_path(tmp_path):
    ds = OccDataSample(metainfo=dict(sample_idx='t', occ_path=str(tmp_path / 'nope'),
                                     eval_thresholds=[0.35]))
    ds.pred_occ = torch.zeros(1, 2, 2, 2, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match='nope/labels.npz'):
        OccMetric().process({}, [ds])


def test_threshold_count_mismatch_is_an_error():
    ds = _sample([1, 2], [1, 2], thresholds=(0.3, 0.35))
    with pytest.raises(ValueError, match='eval_thresholds'):
        OccMetric().process({}, [ds])


def test_nothing_observed_gives_nan():
    assert math.isnan(occ_miou(np.zeros((18, 18))))
