"""RayIoUMetric and its entry points: ray origins from info poses, the metric against
``ray_iou``, ``tools/test.py --eval mIoU RayIoU`` and ``tools/eval_ray_iou.py``, on a
hand-built two-scene split with 200x200x16 volumes."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator

from mmdet3d.analysis.prior_baseline import evaluate_prior_ray_iou
from mmdet3d.engine.runner_setup import apply_test_args, load_config
from mmdet3d.evaluation.functional import ray_iou as ray_iou_module
from mmdet3d.evaluation.functional.ray_iou import lidar_ray_directions, ray_iou
from mmdet3d.evaluation.functional.ray_origins import load_ray_origins
from mmdet3d.evaluation.metrics.ray_iou_metric import RayIoUMetric
from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.formats.occ_predictions import save_occ_prediction
from mmdet3d.structures import OccDataSample
from mmdet3d.utils import register_all_modules
from tools import eval_ray_iou
from tools import test as test_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY_CFG = str(REPO_ROOT / 'tests' / 'fixtures' / 'configs' / 'toy_occ_2e.py')
DEMO_CFG = str(REPO_ROOT / 'configs' / 'occflownet' / 'occflownet_tiny_2d_flow_cpu.py')
DIRECTIONS = lidar_ray_directions()[::23]  # 611 of the 14,040 rays
CAR, ROAD, MANMADE, FREE = 4, 11, 15, 17
LIDAR2EGO = [1.0, 0.0, 2.0]
YAW_90 = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]  # (w, x, y, z)
IDENTITY = [1.0, 0.0, 0.0, 0.0]
# scene A: keyframes with egos at global x = 0 (yawed by 90 degrees), 10 and 50 m; scene B: one
# keyframe. Listed out of time order: the origins follow the timestamps.
POSES = {'a0': ('A', 0, [0.0, 0.0, 0.0], YAW_90), 'a1': ('A', 1, [10.0, 0.0, 0.0], IDENTITY),
         'a2': ('A', 2, [50.0, 0.0, 0.0], IDENTITY), 'b0': ('B', 0, [300.0, 5.0, 0.0], IDENTITY)}
ORDER = ('a2', 'b0', 'a1', 'a0')
# LiDAR positions (global (0, 1, 2), (11, 0, 2), (51, 0, 2) for scene A) in each sample's ego,
# kept when |x|, |y| < 39, in time order: a0 drops y = -51, a1 x = 41, a2 x = -50 and x = -39.
EXPECTED_ORIGINS = {'a0': [[1, 0, 2], [0, -11, 2]], 'a1': [[-10, 1, 2], [1, 0, 2]],
                    'a2': [[1, 0, 2]], 'b0': [[1, 0, 2]]}


def _volume(car_x: int, wall_y: int) -> np.ndarray:
    """(200, 200, 16) labels: road at z = 0, a car block ahead, a building wall to the left."""
    labels = np.full((200, 200, 16), FREE, np.uint8)
    labels[:, :, 0] = ROAD
    labels[car_x:car_x + 10, 95:105, 1:5] = CAR
    labels[:, wall_y:wall_y + 3, 1:12] = MANMADE
    return labels


GT = {token: _volume(120 + 5 * i, 150 + i) for i, token in enumerate(POSES)}
PRED = {token: _volume(122 + 5 * i, 150 + 2 * i) for i, token in enumerate(POSES)}


def _write_split(root: Path) -> str:
    """GT ``<root>/gts/<scene>/<token>/labels.npz``, an info pkl with poses, returns its path."""
    infos = []
    for token in ORDER:
        scene, second, translation, rotation = POSES[token]
        folder = root / 'gts' / f'scene-{scene}' / token
        folder.mkdir(parents=True)
        ones = np.ones_like(GT[token])
        np.savez_compressed(folder / 'labels.npz', semantics=GT[token], mask_lidar=ones,
                            mask_camera=ones)
        infos.append(dict(token=token, scene_token=scene, scene_name=f'scene-{scene}',
                          timestamp=second * 500_000, occ_path=f'gts/scene-{scene}/{token}',
                          lidar2ego_translation=LIDAR2EGO, lidar2ego_rotation=IDENTITY,
                          ego2global_translation=translation, ego2global_rotation=rotation))
    path = root / 'infos_val.pkl'
    dump_infos(str(path), infos, 'v1.0-mini')
    return str(path)


def _data_sample(token: str, with_gt: bool) -> OccDataSample:
    """Predicted sample as the model returns it: two thresholds, only the first is scored."""
    scene = POSES[token][0]
    sample = OccDataSample(metainfo=dict(sample_idx=token, scene_name=f'scene-{scene}',
                                         occ_path=f'gts/scene-{scene}/{token}',
                                         eval_thresholds=[0.3, 0.5]))
    sample.pred_occ = torch.from_numpy(np.stack([PRED[token], np.full_like(PRED[token], FREE)]))
    if with_gt:
        sample.gt_occ = dict(semantics=GT[token])
    return sample


def test_origins_follow_the_scene_poses(tmp_path):
    origins = load_ray_origins(_write_split(tmp_path))
    assert sorted(origins) == sorted(POSES)
    for token, expected in EXPECTED_ORIGINS.items():
        np.testing.assert_allclose(origins[token], expected, atol=1e-9, err_msg=token)


def test_metric_equals_ray_iou_and_passes_the_origins(tmp_path, monkeypatch):
    ann_file = _write_split(tmp_path)
    seen = []
    add = ray_iou_module.RayIoUAccumulator.add
    monkeypatch.setattr(ray_iou_module.RayIoUAccumulator, 'add',
                        lambda self, pred, gt, origins: seen.append(origins) or add(
                            self, pred, gt, origins))
    metric = RayIoUMetric(Path(ann_file).name, data_root=str(tmp_path), path_prefix=str(tmp_path),
                          directions=DIRECTIONS)
    # one sample brings its GT, the other is read from occ_path under path_prefix
    metric.process({}, [_data_sample('a0', with_gt=True).to_dict(), _data_sample('a1', False)])
    result = metric.compute_metrics(metric.results)
    for origins, token in zip(seen, ('a0', 'a1')):
        np.testing.assert_allclose(origins, EXPECTED_ORIGINS[token], atol=1e-9)
    seen.clear()
    direct = ray_iou([PRED['a0'], PRED['a1']], [GT['a0'], GT['a1']],
                     [EXPECTED_ORIGINS['a0'], EXPECTED_ORIGINS['a1']], directions=DIRECTIONS)
    assert list(result) == ['RayIoU@1', 'RayIoU@2', 'RayIoU@4', 'RayIoU']
    assert result == {key: direct[key] for key in result}
    assert 0 < result['RayIoU@1'] < result['RayIoU@4'] < 100

    with pytest.raises(KeyError, match=r'sample x9 is not in .*infos_val.pkl'):
        metric.process({}, [dict(sample_idx='x9', pred_occ=PRED['a0'])])


def test_one_evaluator_reports_miou_and_ray_iou(tmp_path):
    register_all_modules()
    evaluator = Evaluator([dict(type='OccMetric', path_prefix=str(tmp_path)),
                           dict(type='RayIoUMetric', ann_file=_write_split(tmp_path),
                                path_prefix=str(tmp_path), directions=DIRECTIONS)])
    evaluator.process([_data_sample(token, with_gt=False) for token in ('a2', 'b0')])
    metrics = evaluator.evaluate(2)
    assert {'mIoU_0.3', 'mIoU_0.5', 'top_mIoU', 'RayIoU@1', 'RayIoU@2', 'RayIoU@4',
            'RayIoU'} == set(metrics)


def test_missing_pose_key_names_the_file(tmp_path):
    path = tmp_path / 'no_pose.pkl'
    dump_infos(str(path), [dict(token='t', scene_token='s', timestamp=0)], 'v1.0-mini')
    with pytest.raises(KeyError, match=r'no_pose.pkl: entry 0 \(token t\).*lidar2ego'):
        RayIoUMetric(str(path))


def _test_args(tmp_path: Path, config: str, **kwargs) -> argparse.Namespace:
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    return argparse.Namespace(**{**dict(config=config, checkpoint=str(ckpt), eval=None, out=None,
                                        work_dir=None, launcher='none'), **kwargs})


def test_eval_options_map_to_the_test_evaluator(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['test.py', 'cfg.py', 'c.pth', '--eval', 'mIoU', 'RayIoU'])
    assert test_tool.parse_args().eval == ['mIoU', 'RayIoU']

    occ = dict(type='OccMetric', use_image_mask=True)
    ray = dict(type='RayIoUMetric', ann_file='data/demo/bevdetv2-nuscenes-mini_infos_val.pkl',
               data_root='')
    cases = [(['mIoU', 'RayIoU'], 'preds', [dict(occ, save_dir='preds', format_only=False), ray]),
             (['RayIoU'], None, ray),
             (['RayIoU'], 'preds', [dict(occ, save_dir='preds', format_only=True), ray]),
             (['mIoU'], None, dict(occ, format_only=False))]
    for selected, out, expected in cases:
        args = _test_args(tmp_path, DEMO_CFG, eval=selected, out=out)
        assert apply_test_args(load_config(DEMO_CFG), args).test_evaluator == expected, selected
    with pytest.raises(ValueError, match='test_dataloader.dataset.ann_file'):
        apply_test_args(load_config(TOY_CFG), _test_args(tmp_path, TOY_CFG, eval=['RayIoU']))


def test_eval_ray_iou_cli_scores_saved_predictions(tmp_path, capsys):
    ann_file = _write_split(tmp_path)
    for token in ('a0', 'a1'):
        save_occ_prediction(str(tmp_path / 'pred'), f'scene-{POSES[token][0]}', token,
                            PRED[token])
    metrics = eval_ray_iou.main(['--pred-dir', str(tmp_path / 'pred'), '--ann-file', ann_file,
                         '--data-root', str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f'RayIoU: {metrics["RayIoU"]:.2f}'
    # the full 14,040 rays by default
    direct = ray_iou([PRED['a0'], PRED['a1']], [GT['a0'], GT['a1']],
                     [EXPECTED_ORIGINS['a0'], EXPECTED_ORIGINS['a1']])
    assert metrics == {key: direct[key] for key in metrics}


def test_prior_ray_iou_scores_the_constant_volume(tmp_path):
    metrics, num = evaluate_prior_ray_iou(PRED['b0'], _write_split(tmp_path), str(tmp_path),
                                          directions=DIRECTIONS)
    tokens = sorted(POSES)  # the pkl's order does not matter: counts are summed
    direct = ray_iou([PRED['b0']] * 4, [GT[t] for t in tokens],
                     [EXPECTED_ORIGINS[t] for t in tokens], directions=DIRECTIONS)
    assert num == 4 and metrics == {key: direct[key] for key in metrics}
