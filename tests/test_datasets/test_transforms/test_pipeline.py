"""The training pipeline of the data_flow.md contract on the tiny world, built from configs."""
from __future__ import annotations

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate

from mmdet3d.registry import MODELS
from mmdet3d.testing.geometry import occ3d_geometry

GEOMETRY = occ3d_geometry(render_frame_ids=[-1, 0, 1])


def _pipeline(world) -> list[dict]:
    return [
        dict(type='PrepareImageInputs', data_config=world.data_config, is_train=True,
             geometry=GEOMETRY, seed=0),
        dict(type='LoadOccGTFromFile'),
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='PointToMultiViewDepth', geometry=GEOMETRY),
        dict(type='GenerateRays', geometry=GEOMETRY, ignore_classes=[4, 7]),
        dict(type='LoadFlowGT', geometry=GEOMETRY),
        dict(type='LoadAnnotationsBEVDepth', is_train=True, seed=0, geometry=GEOMETRY,
             bda_aug_conf=dict(rot_lim=(0, 0), scale_lim=(1, 1), flip_dx_ratio=0.5,
                               flip_dy_ratio=0.5)),
        dict(type='PackOccInputs'),
    ]


def test_pipeline_to_model_inputs(world) -> None:
    frames = world.frames(3, n_points=300)
    occ = world.root / 'gts'
    occ.mkdir()
    np.savez_compressed(occ / 'labels.npz', semantics=np.full((200, 200, 16), 17, np.uint8),
                        mask_lidar=np.ones((200, 200, 16), np.uint8),
                        mask_camera=np.ones((200, 200, 16), np.uint8))
    flow = np.zeros((4, 11), np.uint8)
    flow[:, 9], flow[:, 10] = 4, [0, 2, 3, 5]
    np.savez_compressed(world.root / 'flow.npz', flow=flow)
    pipeline = Compose(_pipeline(world))
    samples = []
    for key in (1, 2):
        prev = frames[key - 1]
        nxt = frames[min(key + 1, 2)]  # scene-end fallback to the key frame
        samples.append(pipeline(dict(
            sample_idx=frames[key]['token'], scene_name='scene-0001',
            pts_filename=frames[key]['lidar_path'], curr=frames[key], adjacent=[prev, prev],
            render_frames=[prev, frames[key], nxt], occ_path=str(occ),
            flow_path=str(world.root / 'flow.npz'))))
    batch = MODELS.build(dict(type='OccDataPreprocessor'))(pseudo_collate(samples), True)
    inputs = batch['inputs']
    cameras = inputs['img_inputs']
    assert [tuple(t.shape) for t in (cameras.imgs, cameras.sensor2egos, cameras.ego2globals,
                                     cameras.intrins, cameras.post_rots, cameras.post_trans,
                                     cameras.bda)] == [
        (2, 6, 3, 64, 176), (2, 6, 4, 4), (2, 6, 4, 4), (2, 6, 3, 3), (2, 6, 3, 3), (2, 6, 3),
        (2, 3, 3)]
    assert set(inputs) == {'img_inputs'}  # the ground truth is in the data samples
    samples = batch['data_samples']
    for sample in samples:
        assert sample.gt_depth.shape == (2, 64, 176) and (sample.gt_depth > 0).any()
        assert sample.gt_occ['semantics'].shape == (200, 200, 16)
    for rays in (sample.gt_rays for sample in samples):
        assert rays.origins.shape == (3, 2, 3) and rays.frame_cam.shape == (len(rays), 2)
        assert rays.directions.shape == (len(rays), 3)
        assert rays.depth.shape == rays.labels.shape == rays.pixels.shape[:1] == (len(rays),)
        assert rays.labels.dtype == torch.int64 and (rays.depth >= 0.05).all()
    np.testing.assert_array_equal(samples[0].gt_flow[:, 10].numpy(), [0, 2])
    assert [s.sample_idx for s in samples] == ['sample1', 'sample2']
