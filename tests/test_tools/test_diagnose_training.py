"""tools/analysis_tools/diagnose_training.py on a tiny demo world: the CLI, and exact figures
when the model's fields are the ground truth itself."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmdet3d.analysis.free_space import occupancy_fields
from mmdet3d.analysis.training_diagnostics import TrainingDiagnostics
from mmdet3d.engine.runner_setup import load_config
from mmdet3d.registry import DATASETS
from mmdet3d.structures.voxel_grids import grid_factors, pool_majority
from mmdet3d.utils import register_all_modules

from tools.analysis_tools import diagnose_training
from tools.misc import subset_infos



def test_cli_prints_the_report_and_writes_json(tiny_render_config, small_grid_cli, tmp_path,
                                               capsys):
    out = tmp_path / 'diag.json'
    summary = diagnose_training.main([tiny_render_config, '--random-init', '--split', 'train',
                                      '--max-rays', '300', '--thresholds', '0.1', '1.0', '--json',
                                      str(out), '--no-progress', '--cfg-options', *small_grid_cli])
    printed = capsys.readouterr().out
    assert 'Training diagnostics over 2 samples' in printed and 'render, gt volume' in printed
    assert json.loads(out.read_text()) == json.loads(json.dumps(summary))
    assert summary['num_samples'] == 2 and summary['tau'] == 0.35
    assert set(summary['tau_sweep']) == {'0.1', '0.35', '1'}
    assert 0 < summary['cells_crossed_pct'] < 100
    assert set(summary['render']) == {'model', 'gt volume'}
    # the random model: sigmoid ~0.5 everywhere, so nearly every GT-free voxel is called occupied
    assert summary['false_occupied_by_range']['0-10'] > 90
    assert 'depth net of the key frame' in printed
    depth_net = summary['depth_net_by_depth']
    assert sum(row['patches'] for row in depth_net.values()) > 100
    # the untrained depth net is near-uniform over its bins
    assert all(row['target_prob'] < 0.2 for row in depth_net.values() if row['patches'])


def test_depth_net_figures_by_hand():
    """Two cameras of 2x2 patches of 2x2 pixels, bins 1, 2, 3, 4 m: each patch's target is the
    bin of its nearest point; patches without a point or beyond the bins are left out."""
    vt = SimpleNamespace(downsample=2, grid_config=dict(depth=[1.0, 5.0, 1.0]), D=4, sid=False)
    gt_depth = torch.zeros(2, 4, 4)
    gt_depth[0, 0, 0], gt_depth[0, 1, 1] = 3.5, 1.2  # camera 0, patch (0, 0): 1.2 m -> bin 0
    gt_depth[0, 2, 3] = 4.9  # camera 0, patch (1, 1): bin 3
    gt_depth[1, 0, 2] = 9.0  # camera 1, patch (0, 1): beyond the bins, not supervised
    gt_depth[1, 3, 0] = 2.0  # camera 1, patch (1, 0): bin 1
    probs = torch.full((2, 4, 2, 2), 0.1)
    probs[0, 0, 0, 0] = 0.7  # patch (0, 0) of camera 0 predicts bin 0: exact
    probs[0, 1, 1, 1] = 0.7  # patch (1, 1) of camera 0 predicts bin 1, target 3
    probs[1, 2, 1, 0] = 0.7  # patch (1, 0) of camera 1 predicts bin 2, target 1
    targets, predicted, target_probs, depths = diagnose_training.depth_net_figures(
        vt, probs, gt_depth)
    np.testing.assert_array_equal(targets, [0, 3, 1])
    np.testing.assert_array_equal(predicted, [0, 1, 2])
    np.testing.assert_allclose(target_probs, [0.7, 0.1, 0.1])
    np.testing.assert_allclose(depths, [1.0, 4.0, 2.0])
    diag = TrainingDiagnostics([0.35], 0.35)
    diag.add_depth_net(targets, predicted, target_probs, depths)
    assert diag.summary()['depth_net_by_depth']['0-5'] == dict(
        patches=3, exact=33.33, within_one_bin=66.67, target_prob=0.3)


def test_ground_truth_fields_reproduce_the_grid_ceiling(tiny_render_config, small_grid_options,
                                                        monkeypatch):
    """A model whose fields are the GT pooled to its grid scores the grid's ceiling, and renders
    exactly like the GT volume."""
    from mmdet3d.analysis.render_inspection import build_model
    from mmdet3d.analysis.training_sample import prepare_sample

    register_all_modules()
    # depth along the ray (range), so that the returns lie where the LiDAR points are
    cfg = load_config(tiny_render_config,
                      dict(small_grid_options, **{'geometry.depth_along_ray': True}))
    dataset = DATASETS.build(diagnose_training.diagnostic_dataset_cfg(cfg, 'train'))
    sample = prepare_sample(dataset, 1)
    gt = sample.results['gt_occ']['semantics']
    assert gt.shape == (200, 200, 16) and sample.results['gt_occ']['mask_camera'].shape == gt.shape
    assert sample.packed['data_samples'].gt_occ['semantics'] is gt  # one copy
    np.testing.assert_array_equal(sample.results['img_inputs'].bda, np.eye(3))  # no BEV aug
    model = build_model(cfg)
    density, semantics = occupancy_fields(
        torch.from_numpy(pool_majority(gt, grid_factors(gt.shape, (40, 40, 8)))))
    monkeypatch.setattr(model, 'decode_fields', lambda voxel_feats: (density, semantics))
    diag = TrainingDiagnostics([0.35], 0.35)
    diagnose_training.diagnose_sample(model, sample, diag, max_rays=400, logit_scale=10.0,
                                      rng=np.random.default_rng(0),
                                      dynamic_classes=[0, 1, 3, 4, 5, 7, 9, 10])
    s = diag.summary()
    assert s['miou'] == s['miou_grid_ceiling'] > 10
    # the returns volume (19.6 here) marks every 2 m cell a surface touches, where the
    # majority-pooled GT (17.5) loses what fills less than half a cell
    assert s['miou_returns_volume'] > 10
    assert s['per_class']['driveable_surface']['returns'] > 20  # 34.9
    model_render, gt_render = s['render']['model'], s['render']['gt volume']
    assert model_render == gt_render  # same fields, same rays, same sampling jitter
    assert set(gt_render['losses']) == {'loss_render_depth', 'loss_render_semantics'}
    # the pooled classes with the GT's own free space score at least the pooled volume
    assert s['miou_semantics_only'] >= s['miou']


def test_subset_infos_keeps_one_scene_in_timestamp_order(tmp_path, capsys):
    from mmdet3d.formats.info_pkl import dump_infos, load_infos

    infos = [dict(token=t, timestamp=ts, scene_name=s) for t, ts, s in
             (('b2', 5, 'scene-b'), ('a1', 3, 'scene-a'), ('a0', 1, 'scene-a'),
              ('b1', 4, 'scene-b'), ('a2', 2, 'scene-a'))]
    src, out = str(tmp_path / 'in.pkl'), str(tmp_path / 'out.pkl')
    dump_infos(src, infos, 'v1.0-mini')
    subset_infos.main([src, out, '--first-scene'])
    kept, meta = load_infos(out)
    assert [i['token'] for i in kept] == ['a0', 'a2', 'a1'] and meta == {'version': 'v1.0-mini'}
    subset_infos.main([src, out, '--scenes', 'scene-b', '--max-samples', '1'])
    assert [i['token'] for i in load_infos(out)[0]] == ['b1']
    with pytest.raises(ValueError, match=r"scenes \['scene-c'\] not found"):
        subset_infos.main([src, out, '--scenes', 'scene-c'])
