"""Every config loads; the paper models, pipelines, loaders and evaluators build from them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdet3d.engine.runner_setup import load_config
from mmdet3d.models.rendering.frame_volumes import FlowVolumes
from mmdet3d.registry import DATASETS, METRICS, MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / 'configs'
PAPER_CONFIGS = ['occflownet_stbase_2d', 'occflownet_stbase_2d_flow',
                 'occflownet_stbase_2d_flow_3d']
ALL_CONFIGS = sorted(p for p in (CONFIG_DIR / 'occflownet').rglob('*.py'))


def load(name: str) -> Config:
    """The config as the tools read it: its geometry handed to the model and the datasets."""
    return load_config(str(CONFIG_DIR / 'occflownet' / f'{name}.py'))


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_loads(path):
    cfg = load_config(str(path))
    assert cfg.model.type == 'OccFlowNet' and cfg.model.geometry == cfg.geometry


def test_paper_configs_differ_only_as_documented():
    cfg_2d, cfg_flow, cfg_3d = (load(name) for name in PAPER_CONFIGS)
    assert cfg_2d.model.renderer.temporal_filter and not cfg_2d.model.renderer.get('use_flow')
    assert cfg_2d.model.renderer.ignore_classes == [0, 1, 3, 4, 5, 7, 9, 10]
    for cfg in (cfg_flow, cfg_3d):
        assert cfg.model.renderer.use_flow and not cfg.model.renderer.temporal_filter
        assert cfg.model.renderer.ignore_classes is None
    assert cfg_2d.model.eval_threshold_range == cfg_flow.model.eval_threshold_range == [0.35]
    assert cfg_3d.model.eval_threshold_range == [0.3]
    assert 'loss_occ_density' not in cfg_flow.model and 'loss_occ_density' in cfg_3d.model

    def steps(cfg):
        return [step['type'] for step in cfg.train_dataloader.dataset.pipeline]

    # the BEV augmentation comes after every ground-truth step: it applies to all of them
    base_steps = ['PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth',
                  'GenerateRays']
    assert steps(cfg_2d) == base_steps + ['LoadAnnotationsBEVDepth', 'PackOccInputs']
    assert steps(cfg_flow) == base_steps + ['LoadFlowGT', 'LoadAnnotationsBEVDepth',
                                            'PackOccInputs']
    assert steps(cfg_3d) == base_steps[:1] + ['LoadOccGTFromFile'] + base_steps[1:] + [
        'LoadFlowGT', 'LoadAnnotationsBEVDepth', 'PackOccInputs']
    rays_2d = cfg_2d.train_dataloader.dataset.pipeline[3]
    rays_flow = cfg_flow.train_dataloader.dataset.pipeline[3]
    assert cfg_2d.train_dataloader.dataset.pipeline[-1]['keys'] == ['img_inputs', 'gt_depth',
                                                                    'gt_rays']
    assert cfg_flow.train_dataloader.dataset.pipeline[-1]['keys'][-1] == 'gt_flow'
    assert cfg_3d.train_dataloader.dataset.pipeline[-1]['keys'][-2:] == ['gt_flow', 'gt_occ']
    assert rays_2d.ignore_classes == [0, 1, 3, 4, 5, 7, 9, 10] and rays_flow.ignore_classes is None
    for cfg in (cfg_2d, cfg_flow, cfg_3d):  # the paper's recipe, inherited unchanged
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-2)
        assert cfg.optim_wrapper.clip_grad.max_norm == 5
        assert cfg.train_cfg.max_epochs == 12 and cfg.train_cfg.val_interval == 4
        assert cfg.default_hooks.checkpoint.interval == 4
        assert cfg.load_from == 'ckpts/bevdet-stbase-4d-stereo-512x1408-cbgs.pth'


@pytest.mark.parametrize('name', PAPER_CONFIGS)
def test_paper_pipelines_and_evaluator_build(name):
    cfg = load(name)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        dataset = DATASETS.build(dict(loader.dataset, lazy_init=True))  # no info pkl read
        assert len(dataset.pipeline.transforms) == len(loader.dataset.pipeline)
    metric = METRICS.build(cfg.test_evaluator)
    assert type(metric).__name__ == 'OccMetric'


def test_paper_model_builds_with_paper_sizes():
    cfg = load('occflownet_stbase_2d_flow_3d')
    model = MODELS.build(cfg.model)
    num_params = sum(p.numel() for p in model.parameters())
    assert num_params == 121_603_592  # the original's parameter count (state-dict manifest)
    assert isinstance(model.renderer.frame_volumes, FlowVolumes)
    assert model.renderer.grid_size == (200, 200, 16)
    assert model.loss_occ_density is not None and model.eval_thresholds == [0.3]
    assert model.img_view_transformer.D == 88
    assert isinstance(model.final_conv.activate, torch.nn.ReLU)


def test_tiny_members_differ_from_the_tiny_flow_config_as_the_paper_configs_do():
    tiny_2d, tiny_flow, tiny_3d = (load(f'occflownet_tiny_{v}_cpu')
                                   for v in ('2d', '2d_flow', '2d_flow_3d'))
    assert tiny_2d.model.renderer.temporal_filter and not tiny_2d.model.renderer.use_flow
    assert tiny_2d.model.renderer.ignore_classes == [0, 1, 3, 4, 5, 7, 9, 10]
    assert tiny_3d.model.renderer == tiny_flow.model.renderer
    assert tiny_3d.model.eval_threshold_range == [0.3 * tiny_flow.model.renderer.density_scale]
    assert 'loss_occ_density' not in tiny_flow.model and 'loss_occ_density' in tiny_3d.model
    assert tiny_3d.geometry == tiny_flow.geometry == tiny_2d.geometry
    # the 3-D losses pool the labels of the 200x200x16 label grid to the model grid
    assert tiny_3d.geometry.label_grid.shape == [200, 200, 16]
    assert tiny_3d.geometry.model_grid_shape == [100, 100, 16]

    def steps(cfg):
        return [step['type'] for step in cfg.train_dataloader.dataset.pipeline]

    assert steps(tiny_2d) == steps(load('occflownet_stbase_2d'))
    assert steps(tiny_3d) == steps(load('occflownet_stbase_2d_flow_3d'))
    rays = {name: [s for s in cfg.train_dataloader.dataset.pipeline if s.type == 'GenerateRays'][0]
            for name, cfg in (('2d', tiny_2d), ('flow', tiny_flow))}
    assert rays['2d'].ignore_classes == [0, 1, 3, 4, 5, 7, 9, 10]
    assert {k: v for k, v in rays['2d'].items() if k != 'ignore_classes'} == {
        k: v for k, v in rays['flow'].items() if k != 'ignore_classes'}
    assert tiny_2d.train_dataloader.dataset.pipeline[-1]['keys'] == ['img_inputs', 'gt_depth',
                                                                     'gt_rays']
    for cfg in (tiny_2d, tiny_3d):  # the tiny recipe, inherited unchanged
        assert cfg.train_cfg == tiny_flow.train_cfg and cfg.optim_wrapper == tiny_flow.optim_wrapper
        assert cfg.test_dataloader == tiny_flow.test_dataloader


# The render-loss settings each config resolved to under the renderer's old keys
# (depth_loss_weight, depth_loss_type, semantic_loss_weight, class_balanced_loss + log_weighting,
# class_frequencies, point_semantic_loss_weight, rays_batch_size), now the model's loss modules.
DEMO_FREQUENCIES = [0, 3696, 3065, 5802, 33974, 0, 0, 13549, 2082, 0, 6011, 175282, 79930, 81920,
                    69932, 140407, 70204]
PAPER_LOSSES = dict(rays_batch_size=32768, class_frequencies=None, depth=(0.05, 'mse'),
                    semantics=1.0, point_semantics=None)
TINY_LOSSES = dict(rays_batch_size=4096, class_frequencies=DEMO_FREQUENCIES, depth=(0.3, 'l1'),
                   semantics=1.0, point_semantics=1.0)


@pytest.mark.parametrize('name,old', [
    *[(name, PAPER_LOSSES) for name in PAPER_CONFIGS],
    *[(f'occflownet_tiny_{v}_cpu', TINY_LOSSES) for v in ('2d', '2d_flow', '2d_flow_3d')],
    ('golden/occflownet_golden-tiny', PAPER_LOSSES)])
def test_render_loss_settings_equal_the_old_renderer_keys(name, old):
    """Every config resolves to the render-loss values it had as renderer settings, and its
    renderer keeps only geometry, sampling and the dynamic-object handling."""
    model = load(name).model
    assert set(model.renderer) <= {
        'type', 'render_range', 'samples_per_ray', 'prop_samples_per_ray', 'use_proposal',
        'render_impl', 'density_scale', 'use_flow', 'temporal_filter', 'ignore_classes',
        'geometry'}
    assert model.rays_batch_size == old['rays_batch_size']
    weights = dict(type='ClassBalancedLogWeights')
    if old['class_frequencies'] is not None:
        weights['class_frequencies'] = old['class_frequencies']
    assert model.ray_class_weights == weights
    loss_weight, loss_type = old['depth']
    assert model.loss_render_depth == dict(type='RenderDepthLoss', loss_weight=loss_weight,
                                           loss_type=loss_type)
    assert model.loss_render_semantics == dict(type='RenderSemanticLoss',
                                               loss_weight=old['semantics'])
    if old['point_semantics'] is None:
        assert model.get('loss_point_semantics') is None
    else:
        assert model.loss_point_semantics == dict(type='RenderSemanticLoss',
                                                  loss_weight=old['point_semantics'])
    assert model.get('loss_ray_occupancy') is None and model.get('loss_distortion') is None
