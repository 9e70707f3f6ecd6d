"""The transforms on a generated demo world, through the info converter and the dataset.

Cross-module check: with the quirk-1/2 fixes a ray ends on its LiDAR point, which must lie in an
occupied Occ3D voxel of the same class, before and after the BEV flip.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.datasets.converters.nuscenes_infos import (create_infos, info_path, load_nuscenes,
                                                        write_infos)
from mmdet3d.datasets.nuscenes_occ_dataset import NuScenesDatasetOccpancy
from mmdet3d.datasets.synthetic import DemoConfig, generate
from mmdet3d.testing.geometry import occ3d_geometry

DATA_CONFIG = dict(cams=['CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT',
                         'CAM_BACK', 'CAM_BACK_RIGHT'], Ncams=6, input_size=(96, 256),
                   resize=(-0.06, 0.11), rot=(-5.4, 5.4), flip=True, crop_h=(0.0, 0.0),
                   resize_test=0.0)
PC_MIN, VOXEL = np.array([-40.0, -40.0, -1.0]), 0.4


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp('demo')
    root = generate(out / 'nuscenes', DemoConfig(scenes=1, samples_per_scene=3,
                                                 sweeps_per_sample=0, image_size=(320, 180),
                                                 lidar_azimuth_steps=360), progress=False)
    nusc = load_nuscenes(str(root), 'v1.0-mini')
    infos = create_infos(nusc, 'v1.0-mini', str(root / 'gts'))
    write_infos(infos, str(out), 'bevdetv2-nuscenes', 'v1.0-mini')
    return info_path(str(out), 'bevdetv2-nuscenes', 'v1.0-mini', 'train')


@pytest.mark.parametrize('flip', [0.0, 1.0])
def test_rays_hit_occupied_voxels_of_their_class(ann_file: str, flip: float) -> None:
    pipeline = [
        dict(type='PrepareImageInputs', data_config=DATA_CONFIG, is_train=True, seed=0),
        dict(type='LoadOccGTFromFile'),
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='PointToMultiViewDepth'),
        dict(type='GenerateRays'),
        dict(type='LoadAnnotationsBEVDepth', is_train=True, seed=0,
             bda_aug_conf=dict(rot_lim=(0, 0), scale_lim=(1, 1), flip_dx_ratio=flip,
                               flip_dy_ratio=flip)),  # of all the ground truth
    ]  # the dataset hands each step its geometry
    geometry = occ3d_geometry(half_pixel_shift=False, depth_along_ray=True)
    dataset = NuScenesDatasetOccpancy(ann_file, geometry, pipeline=pipeline)
    results = dataset[1]
    assert results['img_inputs'].imgs.shape == (18, 3, 96, 256)
    assert results['gt_depth'].shape == (6, 96, 256) and (results['gt_depth'] > 0).sum() > 100
    rays = results['gt_rays']
    idx, depth, label = rays.frame_cam, rays.depth, rays.labels
    assert rays.origins.shape == (7, 6, 3) and len(idx) > 500
    key = idx[:, 0] == 3
    ends = (rays.origins[idx[key, 0], idx[key, 1]] + depth[key, None] *
            rays.directions[key]).double().numpy()
    vox = np.floor((ends - PC_MIN) / VOXEL).astype(int)
    inside = np.all((vox >= 0) & (vox < [200, 200, 16]), axis=1)
    sem = results['gt_occ']['semantics'][tuple(vox[inside].T)]
    occupied = sem != 17
    assert inside.all() and occupied.mean() > 0.98, occupied.mean()
    same = sem[occupied] == label[key][inside][occupied].numpy()
    assert same.mean() > 0.95, same.mean()
    assert torch.equal(results['img_inputs'].bda, torch.diag(torch.tensor(
        [1.0 - 2 * flip, 1.0 - 2 * flip, 1.0])))
