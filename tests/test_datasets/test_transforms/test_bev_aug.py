"""LoadAnnotationsBEVDepth (bda + the BEV augmentation of all ground truth: Occ3D GT, rays,
flow rows) and LoadOccGTFromFile."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.bev_aug import LoadAnnotationsBEVDepth
from mmdet3d.datasets.transforms.occ_gt import LoadOccGTFromFile
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry

CONF = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=0.5, flip_dy_ratio=0.5)
PC_MIN, VOXEL = np.array([-40.0, -40.0, -1.0]), 0.4


def _img_inputs() -> CameraInputs:
    return CameraInputs(imgs=torch.zeros(6, 3, 2, 4), sensor2egos=torch.zeros(6, 4, 4),
                        ego2globals=torch.zeros(6, 4, 4), intrins=torch.zeros(6, 3, 3),
                        post_rots=torch.zeros(6, 3, 3), post_trans=torch.zeros(6, 3))


@pytest.fixture
def occ_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / 'labels.npz',
                        semantics=rng.integers(0, 18, (200, 200, 16)).astype(np.uint8),
                        mask_lidar=rng.integers(0, 2, (200, 200, 16)).astype(np.uint8),
                        mask_camera=rng.integers(0, 2, (200, 200, 16)).astype(np.uint8))
    return tmp_path


def test_load_occ_gt(occ_folder: Path) -> None:
    out = LoadOccGTFromFile()(dict(occ_path=str(occ_folder)))
    ref = np.load(occ_folder / 'labels.npz')
    assert set(out['gt_occ']) == {'semantics', 'mask_lidar', 'mask_camera'}
    for name, volume in out['gt_occ'].items():
        assert volume.dtype == np.uint8 and volume.shape == (200, 200, 16)
        np.testing.assert_array_equal(volume, ref[name])


def test_load_occ_gt_missing_names_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'nope' / 'labels.npz')):
        LoadOccGTFromFile()(dict(occ_path=str(tmp_path / 'nope')))


@pytest.mark.parametrize('flip_dx,flip_dy', [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_flip_moves_gt_with_geometry(occ_folder: Path, flip_dx: float, flip_dy: float) -> None:
    results = LoadOccGTFromFile()(dict(occ_path=str(occ_folder), img_inputs=_img_inputs()))
    orig = {k: v.copy() for k, v in results['gt_occ'].items()}
    conf = dict(CONF, flip_dx_ratio=flip_dx, flip_dy_ratio=flip_dy)
    out = LoadAnnotationsBEVDepth(conf, is_train=True, seed=0)(results)
    bda = out['img_inputs'].bda.numpy()
    np.testing.assert_array_equal(bda, np.diag([-1.0 if flip_dx else 1.0,
                                                -1.0 if flip_dy else 1.0, 1.0]))
    # a voxel centre moved by bda lands in the voxel holding the same GT value
    idx = np.stack(np.meshgrid(np.arange(0, 200, 7), np.arange(0, 200, 11), np.arange(16),
                               indexing='ij'), -1).reshape(-1, 3)
    centres = PC_MIN + (idx + 0.5) * VOXEL
    moved = np.floor((centres @ bda.T - PC_MIN) / VOXEL).astype(int)
    for key, volume in orig.items():
        np.testing.assert_array_equal(out['gt_occ'][key][tuple(moved.T)], volume[tuple(idx.T)])
        assert out['gt_occ'][key].flags['C_CONTIGUOUS']


@pytest.mark.parametrize('flip_dx,flip_dy', [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_flip_moves_flow_rows_and_rays_with_the_gt(occ_folder: Path, flip_dx: float,
                                                   flip_dy: float) -> None:
    """The flow rows' source and target voxels are flipped like the Occ3D volumes (a voxel's
    row follows its GT label); the rays' origins and directions get the bda."""
    rng = np.random.default_rng(1)
    rows = np.zeros((40, 11), np.uint8)
    rows[:, [0, 3, 6]] = rng.integers(0, 16, (40, 3))  # z
    rows[:, [1, 2, 4, 5, 7, 8]] = rng.integers(0, 200, (40, 6))  # y, x
    rows[:, 9:] = rng.integers(0, 7, (40, 2))
    rays = LidarRays(origins=torch.randn(2, 6, 3), directions=torch.randn(5, 3),
                     frame_cam=torch.zeros(5, 2, dtype=torch.long), depth=torch.rand(5),
                     labels=torch.arange(5))
    results = LoadOccGTFromFile()(dict(occ_path=str(occ_folder), img_inputs=_img_inputs(),
                                       gt_flow=rows.copy(), gt_rays=rays))
    semantics = results['gt_occ']['semantics'].copy()
    conf = dict(CONF, flip_dx_ratio=flip_dx, flip_dy_ratio=flip_dy)
    out = LoadAnnotationsBEVDepth(conf, is_train=True, seed=0, geometry=occ3d_geometry())(
        results)
    bda = out['img_inputs'].bda
    flow = out['gt_flow']
    assert flow.dtype == np.uint8 and flow.shape == rows.shape
    np.testing.assert_array_equal(flow[:, 6:], rows[:, 6:])  # floor, class, frame kept
    for start in (0, 3):
        z, y, x = rows[:, start:start + 3].T
        new = tuple(flow[:, start + i] for i in (2, 1, 0))  # (x, y, z)
        np.testing.assert_array_equal(out['gt_occ']['semantics'][new], semantics[x, y, z])
    torch.testing.assert_close(out['gt_rays'].origins, rays.origins @ bda.T, rtol=0, atol=0)
    torch.testing.assert_close(out['gt_rays'].directions, rays.directions @ bda.T, rtol=0,
                               atol=0)
    assert out['gt_rays'].depth is rays.depth


def test_flow_rows_need_the_geometry() -> None:
    with pytest.raises(ValueError, match='geometry'):
        LoadAnnotationsBEVDepth(CONF, is_train=False)(
            dict(img_inputs=_img_inputs(), gt_flow=np.zeros((1, 11), np.uint8)))


def test_test_mode_is_identity_and_seeded_draws() -> None:
    conf = dict(CONF, flip_dx_ratio=1.0, flip_dy_ratio=1.0)
    out = LoadAnnotationsBEVDepth(conf, is_train=False)(dict(img_inputs=_img_inputs()))
    np.testing.assert_array_equal(out['img_inputs'].bda.numpy(), np.eye(3))
    with pytest.raises(ValueError, match='applied twice'):
        LoadAnnotationsBEVDepth(conf, is_train=False)(out)
    draws = [LoadAnnotationsBEVDepth(CONF, True, seed=s).sample_bda_augmentation()
             for s in range(16)]
    assert {d['flip_dx'] for d in draws} == {True, False}
    assert draws[5] == LoadAnnotationsBEVDepth(CONF, True, seed=5).sample_bda_augmentation()
    with pytest.raises(KeyError, match='img_inputs'):
        LoadAnnotationsBEVDepth(CONF, True)({})
