"""OccDataPreprocessor: stacking of pseudo-collated PackOccInputs outputs, the ground truth in
the data samples (data_flow.md sec. 3)."""
from __future__ import annotations

import numpy as np
import torch
from mmengine.dataset import pseudo_collate

from mmdet3d.datasets.transforms.formatting import PackOccInputs
from mmdet3d.models.data_preprocessors.occ_data_preprocessor import OccDataPreprocessor
from mmdet3d.registry import MODELS
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_data_sample import OccDataSample

N, F, T, H, W, GRID = 2, 3, 7, 8, 16, (4, 4, 2)


def _sample(n_rays: int, with_rays: bool = True) -> dict:
    results = dict(
        img_inputs=CameraInputs(
            imgs=torch.rand(N * F, 3, H, W), sensor2egos=torch.rand(N * F, 4, 4),
            ego2globals=torch.rand(N * F, 4, 4), intrins=torch.rand(N * F, 3, 3),
            post_rots=torch.rand(N * F, 3, 3), post_trans=torch.rand(N * F, 3), bda=torch.eye(3)),
        gt_occ=dict(semantics=np.full(GRID, 17, np.uint8), mask_lidar=np.ones(GRID, np.uint8),
                    mask_camera=np.zeros(GRID, np.uint8)),
        sample_idx=f'tok{n_rays}', occ_path=f'./data/gts/scene-0001/tok{n_rays}',
        scene_name='scene-0001')
    if with_rays:
        results.update(
            gt_depth=torch.rand(N, H, W),
            gt_rays=LidarRays(origins=torch.rand(T, N, 3), directions=torch.rand(n_rays, 3),
                           frame_cam=torch.zeros(n_rays, 2, dtype=torch.int64),
                           depth=torch.rand(n_rays), labels=torch.arange(n_rays)),
            gt_flow=np.zeros((n_rays + 1, 11), np.uint8))
    return PackOccInputs()(results)


def test_training_batch_shapes() -> None:
    packed = [_sample(5), _sample(9)]
    assert isinstance(packed[0]['data_samples'], OccDataSample)
    assert packed[0]['data_samples'].occ_path == './data/gts/scene-0001/tok5'
    assert packed[0]['data_samples'].gt_occ['semantics'].shape == GRID
    preprocessor = MODELS.build(dict(type='OccDataPreprocessor'))
    out = preprocessor(pseudo_collate(packed), training=True)
    inputs = out['inputs']
    cameras = inputs['img_inputs']
    assert isinstance(cameras, CameraInputs)
    assert {name: tuple(getattr(cameras, name).shape) for name in (
        'imgs', 'sensor2egos', 'ego2globals', 'intrins', 'post_rots', 'post_trans', 'bda')} == dict(
        imgs=(2, N * F, 3, H, W), sensor2egos=(2, N * F, 4, 4), ego2globals=(2, N * F, 4, 4),
        intrins=(2, N * F, 3, 3), post_rots=(2, N * F, 3, 3), post_trans=(2, N * F, 3),
        bda=(2, 3, 3))
    assert torch.equal(cameras.imgs[1], packed[1]['inputs']['img_inputs'].imgs)
    assert torch.equal(cameras.post_trans[0], packed[0]['inputs']['img_inputs'].post_trans)
    assert set(inputs) == {'img_inputs'}  # the network inputs only
    samples = out['data_samples']
    assert [s.gt_depth.shape for s in samples] == [(N, H, W)] * 2
    for sample in samples:
        for key in ('semantics', 'mask_lidar', 'mask_camera'):
            volume = sample.gt_occ[key]
            assert volume.shape == GRID and volume.dtype == np.uint8
    rays = [s.gt_rays for s in samples]
    assert [len(r) for r in rays] == [5, 9]
    assert [r.origins.shape for r in rays] == [(T, N, 3)] * 2
    assert [r.directions.shape for r in rays] == [(5, 3), (9, 3)]
    assert [r.frame_cam.shape for r in rays] == [(5, 2), (9, 2)]
    assert torch.equal(rays[1].labels, torch.arange(9))
    assert [s.gt_flow.shape for s in samples] == [(6, 11), (10, 11)]
    assert samples[0].gt_flow.dtype == torch.uint8
    assert [s.sample_idx for s in samples] == ['tok5', 'tok9']


def test_test_batch_without_rays() -> None:
    packed = [_sample(3, with_rays=False)]
    out = OccDataPreprocessor()(pseudo_collate(packed))
    assert set(out['inputs']) == {'img_inputs'}
    (sample,) = out['data_samples']
    assert 'gt_occ' in sample and 'gt_rays' not in sample and 'gt_depth' not in sample
    assert out['inputs']['img_inputs'].imgs.shape == (1, N * F, 3, H, W)
