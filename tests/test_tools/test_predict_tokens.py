"""visualize_occupancy.py --config --checkpoint --token: a checkpoint's prediction of chosen
samples, saved as tools/test.py --out saves it, then drawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmdet3d.engine.runner_setup import distribute_geometry
from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.formats.occ_predictions import load_prediction
from mmdet3d.registry import DATASETS, MODELS
from mmdet3d.testing.tiny_model import TINY_MODEL_CONFIG
from mmdet3d.utils import register_all_modules
from tools import visualize_occupancy


def test_checkpoint_and_token_predict_like_the_model(tiny_render_config, small_grid_options,
                                                    tmp_path):
    register_all_modules()
    cfg = Config.fromfile(tiny_render_config)
    # the 40x40x8 model grid predicted on Occ3D's 200x200x16 label grid
    cfg.merge_from_dict(dict(small_grid_options, **{'geometry.label_grid.shape': [200, 200, 16]}))
    cfg.test_dataloader.dataset.pipeline[0].data_config.input_size = Config.fromfile(
        str(TINY_MODEL_CONFIG)).input_size
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    distribute_geometry(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    checkpoint = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    info = cfg.train_dataloader.dataset.ann_file
    token = load_infos(info)[0][1]['token']

    paths = visualize_occupancy.main(['--config', config, '--checkpoint', checkpoint, '--token',
                                      token, '--pred-dir', str(tmp_path / 'pred'), '--info', info,
                                      '--out', str(tmp_path / 'vis'), '--view', 'bev'])
    assert [p.rsplit('/', 1)[-1] for p in paths] == [f'{token}.png']
    saved = list((tmp_path / 'pred').glob(f'*/{token}.npz'))
    assert len(saved) == 1

    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, ann_file=info))
    index = [dataset.get_data_info(i)['sample_idx'] for i in range(len(dataset))].index(token)
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([dataset[index]]), False)
        expected = model(**data, mode='predict')[0].pred_occ[0].numpy()
    np.testing.assert_array_equal(load_prediction(str(saved[0])), expected)

    with pytest.raises(KeyError, match='not in'):
        visualize_occupancy.main(['--config', config, '--checkpoint', checkpoint, '--token',
                                  'no-such-token', '--pred-dir', str(tmp_path / 'pred2'),
                                  '--info', info, '--out', str(tmp_path / 'vis2')])
