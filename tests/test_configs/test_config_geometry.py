"""The configs' geometry: declared once, handed to every component by ``load_config``.

The resolved components equal the values the configs gave them one by one before the geometry
existed (written out below), one ``--cfg-options geometry...`` changes the grid everywhere, and a
component with a different geometry of its own, or built without one, is refused.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdet3d.datasets.nuscenes_occ_dataset import NuScenesDatasetOccpancy
from mmdet3d.datasets.transforms.flow_gt import LoadFlowGT
from mmdet3d.datasets.transforms.image_inputs import PrepareImageInputs
from mmdet3d.datasets.transforms.point_depth import PointToMultiViewDepth
from mmdet3d.datasets.transforms.ray_generation import GenerateRays
from mmdet3d.engine.runner_setup import load_config
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.models.view_transformers.frustum_geometry import create_frustum, grid_infos
from mmdet3d.models.view_transformers.lss_view_transformer import LSSViewTransformerBEVStereo
from mmdet3d.registry import DATASETS, MODELS
from mmdet3d.structures.occ_geometry import OccGeometry
from mmdet3d.testing.geometry import OCC3D_GEOMETRY, occ3d_geometry
from mmdet3d.testing.tiny_model import build_tiny_model

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'occflownet'
FRAMES = [-3, -2, -1, 0, 1, 2, 3]
PC_RANGE = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
#: What each config gave its components before the geometry (the literals of the configs and
#: the constructors' defaults they relied on).
PAPER = dict(grid_config=dict(x=[-40, 40, 0.4], y=[-40, 40, 0.4], z=[-1, 5.4, 0.4],
                              depth=[1.0, 45.0, 0.5]),
             grid_size=[200, 200, 16], gt_occ_size=None, align_corners=True,
             half_pixel_shift=True, depth_along_ray=False, skip_copied_frames=False,
             lidar_key_ego=False)
TINY = dict(grid_config=dict(x=[-40, 40, 0.8], y=[-40, 40, 0.8], z=[-1, 5.4, 0.4],
                             depth=[1.0, 45.0, 2.0]),
            grid_size=[100, 100, 16], gt_occ_size=[200, 200, 16], align_corners=False,
            half_pixel_shift=False, depth_along_ray=True, skip_copied_frames=True,
            lidar_key_ego=True)
GOLDEN = dict(grid_config=dict(x=[-40, 40, 2.5], y=[-40, 40, 2.5], z=[-1, 5.4, 0.8],
                               depth=[1.0, 45.0, 4.0]),
              grid_size=[32, 32, 8], gt_occ_size=None, align_corners=True)
EXPECTED = {'occflownet_stbase_2d': PAPER, 'occflownet_stbase_2d_flow': PAPER,
            'occflownet_stbase_2d_flow_3d': PAPER, 'occflownet_tiny_2d_cpu': TINY,
            'occflownet_tiny_2d_flow_cpu': TINY, 'occflownet_tiny_2d_flow_3d_cpu': TINY,
            'golden/occflownet_golden-tiny': GOLDEN}
TINY_CFG = str(CONFIGS / 'occflownet_tiny_2d_flow_cpu.py')


def _light_model_parts(cfg) -> tuple[LSSViewTransformerBEVStereo, VolumeRenderer]:
    """The view transformer (with few channels: its grid does not depend on them) and the
    renderer of ``cfg.model`` as the detector builds them (its geometry handed over)."""
    vt = dict(cfg.model.img_view_transformer, geometry=cfg.model.geometry, in_channels=8,
              depthnet_cfg=dict(cfg.model.img_view_transformer.depthnet_cfg,
                                aspp_mid_channels=4))
    return (MODELS.build(vt),
            MODELS.build(dict(cfg.model.renderer, geometry=cfg.model.geometry)))


@pytest.mark.parametrize('name', list(EXPECTED))
def test_configs_resolve_to_the_values_their_components_had(name):
    cfg = load_config(str(CONFIGS / f'{name}.py'))
    old = EXPECTED[name]
    geometry = OccGeometry.build(cfg.geometry)
    vt, renderer = _light_model_parts(cfg)
    assert vt.grid_config == old['grid_config']
    for buffer, expected in zip((vt.grid_lower_bound, vt.grid_interval, vt.grid_size),
                                grid_infos(old['grid_config'])):
        assert torch.equal(buffer, expected)  # bit for bit
    assert torch.equal(vt.frustum, create_frustum(old['grid_config']['depth'], vt.input_size,
                                                  vt.downsample))
    assert renderer.pc_range == tuple(PC_RANGE)
    assert renderer.grid_size == tuple(old['grid_size'])
    assert renderer.render_frame_ids == tuple(FRAMES)
    assert renderer.align_corners is old['align_corners']
    gt_occ_size = old['gt_occ_size'] or old['grid_size']  # None: the labels are the model grid
    assert geometry.label_grid.shape == tuple(gt_occ_size)
    assert geometry.num_adj == 1  # the original's multi_adj_frame_id_cfg (1, 2, 1)
    if 'train_dataloader' not in cfg:
        return
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = DATASETS.build(dict(cfg[loader].dataset, lazy_init=True))
        assert dataset.geometry.adjacent_frames == (1, 2)  # the dataset's old defaults
        assert dataset.geometry.render_frame_ids == tuple(FRAMES)
        steps = {type(step).__name__: step for step in dataset.pipeline.transforms}
        assert steps['PrepareImageInputs'].lidar_key_ego is old['lidar_key_ego']
        if loader != 'train_dataloader':
            continue
        rays = steps['GenerateRays']
        assert rays.render_frame_ids == FRAMES and rays.pc_range.tolist() == PC_RANGE
        assert rays.depth_range == (0.05, 39.0)
        for flag in ('half_pixel_shift', 'depth_along_ray', 'skip_copied_frames'):
            assert getattr(rays, flag) is old[flag], flag
        depth = steps['PointToMultiViewDepth']
        assert (depth.depth_min, depth.depth_max) == (1.0, 45.0)
        if 'LoadFlowGT' in steps:
            assert steps['LoadFlowGT'].render_frame_ids == FRAMES


def test_the_tiny_model_derives_num_adj_and_the_grid_factors():
    model = MODELS.build(load_config(TINY_CFG).model)
    assert model.num_adj == 1 and model.num_frames == 3
    assert model.img_bev_encoder_backbone.layers[0][0].conv1.conv.in_channels == 2 * 16
    assert model.geometry.grid_factors == (2, 2, 1)  # 100x100x16 -> the 200x200x16 labels
    assert model.img_view_transformer.geometry is model.renderer.geometry is model.geometry


def test_one_option_changes_the_grid_everywhere():
    """``geometry.model_grid_shape`` alone does what the view transformer's grid_config.x/y
    and the renderer's grid_size overrides did (tools/analysis_tools/overfit.sh, PRESET=ci)."""
    cfg = load_config(TINY_CFG, {'geometry.model_grid_shape': [40, 40, 16]})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.geometry == cfg.geometry
    model = MODELS.build(cfg.model)
    vt = model.img_view_transformer
    assert vt.grid_config['x'] == vt.grid_config['y'] == [-40, 40, 2.0]
    assert vt.grid_config['z'] == [-1, 5.4, 0.4] and vt.grid_size.tolist() == [40, 40, 16]
    assert model.renderer.grid_size == (40, 40, 16)
    assert model.geometry.grid_factors == (5, 5, 1)
    paper = load_config(str(CONFIGS / 'occflownet_stbase_2d_flow.py'),
                        {'geometry.model_grid_shape': [100, 100, 16]})
    vt, renderer = _light_model_parts(paper)
    assert vt.grid_config['x'] == [-40, 40, 0.8] and renderer.grid_size == (100, 100, 16)


def test_a_written_config_takes_geometry_options_again(tmp_path):
    """A config dumped after load_config (as in a work dir) holds the handed-out copies; a
    ``geometry`` option still reaches every component."""
    written = str(tmp_path / 'written.py')
    load_config(TINY_CFG).dump(written)
    cfg = load_config(written, {'geometry.model_grid_shape': [40, 40, 16]})
    assert cfg.model.geometry == cfg.train_dataloader.dataset.geometry == cfg.geometry
    assert cfg.geometry.model_grid_shape == [40, 40, 16]


@pytest.mark.parametrize('key', ['model.renderer.grid_size', 'model.renderer.pc_range',
                                 'model.renderer.align_corners', 'model.gt_occ_size',
                                 'model.num_adj',
                                 'train_dataloader.dataset.render_offsets'])
def test_the_removed_keys_are_refused(key):
    with pytest.raises(KeyError, match='takes no argument'):
        load_config(TINY_CFG, {key: 1})


@pytest.mark.parametrize('component', ['model', 'train_dataloader.dataset'])
def test_a_component_with_another_geometry_is_refused(tmp_path, component):
    other = dict(OCC3D_GEOMETRY, model_grid_shape=[100, 100, 16])
    place = 'model = dict(geometry={})' if component == 'model' else \
        'train_dataloader = dict(dataset=dict(geometry={}))'
    config = tmp_path / 'conflict.py'
    config.write_text(f"_base_ = ['{CONFIGS / 'occflownet_stbase_2d.py'}']\n"
                      + place.format(repr(other)) + '\n')
    with pytest.raises(ValueError, match=f'{component} sets a geometry of its own'):
        load_config(str(config))
    same = tmp_path / 'same.py'  # the declared geometry, restated: accepted
    same.write_text(config.read_text().replace(repr(other), repr(OCC3D_GEOMETRY)))
    assert load_config(str(same)).model.geometry == OCC3D_GEOMETRY


def test_sub_components_with_another_geometry_are_refused():
    with pytest.raises(ValueError, match='renderer sets a geometry of its own'):
        build_tiny_model(renderer=dict(geometry=occ3d_geometry()))
    step = dict(type='GenerateRays', geometry=occ3d_geometry(render_frame_ids=[0, 1]))
    with pytest.raises(ValueError, match=r'pipeline step 1 \(GenerateRays\) sets a geometry'):
        NuScenesDatasetOccpancy('unused.pkl', occ3d_geometry(), lazy_init=True,
                                pipeline=[dict(type='PackOccInputs'), step])


@pytest.mark.parametrize('build', [
    lambda: VolumeRenderer(), lambda: LSSViewTransformerBEVStereo(input_size=(64, 192)),
    lambda: GenerateRays(), lambda: LoadFlowGT(), lambda: PointToMultiViewDepth(),
    lambda: PrepareImageInputs(data_config={}, is_train=False),
    lambda: NuScenesDatasetOccpancy('unused.pkl', lazy_init=True),
    # a config read without load_config: its geometry was not handed to the model
    lambda: MODELS.build(Config.fromfile(TINY_CFG).model)])
def test_no_component_builds_without_a_geometry(build):
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'geometry'"):
        build()
