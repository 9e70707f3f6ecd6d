"""Fixtures of the tool tests: a tiny model on a tiny world."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from mmdet3d.testing.tiny_model import TINY_MODEL_CONFIG

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def tiny_render_config(tmp_path_factory) -> str:
    """The ``_2d`` config with the golden tiny model and its geometry (a 32 x 32 x 8 label and
    model grid, the paper's conventions) on a generated one-scene demo world; its geometry is
    handed to the components by ``load_config``."""
    from mmdet3d.datasets.converters.nuscenes_infos import (create_infos, load_nuscenes,
                                                            write_infos)
    from mmdet3d.datasets.synthetic import DemoConfig, generate

    root = tmp_path_factory.mktemp('vis_world')
    demo = generate(root / 'demo', DemoConfig(scenes=1, samples_per_scene=2, sweeps_per_sample=0,
                                              image_size=(96, 54), lidar_azimuth_steps=360),
                    progress=False)
    infos = create_infos(load_nuscenes(str(demo), 'v1.0-mini'), 'v1.0-mini', str(demo / 'gts'))
    write_infos(infos, str(root), 'bevdetv2-nuscenes', 'v1.0-mini')
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/occflownet/occflownet_stbase_2d.py'))
    tiny = Config.fromfile(str(TINY_MODEL_CONFIG))
    cfg.model = tiny.model
    cfg.geometry = tiny.geometry
    cfg.model.renderer.update(use_flow=False, temporal_filter=True,
                              ignore_classes=cfg.dynamic_classes)
    cfg.train_dataloader.dataset.ann_file = str(root / 'bevdetv2-nuscenes-mini_infos_train.pkl')
    cfg.train_dataloader.dataset.pipeline[0].data_config.input_size = tiny.input_size
    path = str(root / 'tiny_2d.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='session')
def small_grid_options() -> dict:
    """Overrides for the golden tiny model on a 40 x 40 x 8 grid of 2 m cells (a divisor of
    Occ3D's 200 x 200 x 16), also its label grid, with few samples per ray: cheap tool runs."""
    return {'geometry.label_grid.shape': [40, 40, 8], 'geometry.model_grid_shape': [40, 40, 8],
            'model.renderer.samples_per_ray': 16, 'model.renderer.prop_samples_per_ray': 8}


@pytest.fixture(scope='session')
def small_grid_cli(small_grid_options) -> list[str]:
    """``small_grid_options`` as ``--cfg-options`` arguments."""
    return [f'{k}={str(v).replace(" ", "")}' for k, v in small_grid_options.items()]
