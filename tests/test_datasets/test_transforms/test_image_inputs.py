"""PrepareImageInputs: augmentation sampling, affine, normalisation, frame/camera ordering."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mmdet3d.datasets.transforms.image_inputs import (ImageAug, PrepareImageInputs, aug_affine,
                                                      augment_image, normalize_image)
from mmdet3d.testing.geometry import occ3d_geometry

CAMS = ['CAM_FRONT', 'CAM_BACK']
DATA_CONFIG = dict(cams=CAMS, Ncams=2, input_size=(64, 176), resize=(-0.06, 0.11),
                   rot=(-5.4, 5.4), flip=True, crop_h=(0.0, 0.0), resize_test=0.0)
NUSC_CONFIG = dict(DATA_CONFIG, input_size=(512, 1408), src_size=(900, 1600))
GEOMETRY = occ3d_geometry()  # the original's key ego (lidar_key_ego=False)


def test_test_mode_fixed_values() -> None:
    aug = PrepareImageInputs(NUSC_CONFIG, False, GEOMETRY).sample_augmentation(900, 1600)
    assert aug == ImageAug(0.88, (1408, 792), (0, 280, 1408, 792), False, 0.0)
    post_rot, post_tran = aug_affine(aug)
    np.testing.assert_allclose(post_rot, 0.88 * np.eye(2), atol=1e-6)
    np.testing.assert_allclose(post_tran, [0.0, -280.0], atol=1e-6)


def test_train_mode_ranges_and_seed() -> None:
    draws = [PrepareImageInputs(NUSC_CONFIG, True, GEOMETRY, seed=s).sample_augmentation(900, 1600)
             for s in range(20)]
    assert draws[3] == PrepareImageInputs(NUSC_CONFIG, True, GEOMETRY,
                                          seed=3).sample_augmentation(900, 1600)
    for aug in draws:
        assert 1408 / 1600 - 0.06 <= aug.resize <= 1408 / 1600 + 0.11
        assert aug.resize_dims == (int(1600 * aug.resize), int(900 * aug.resize))
        assert aug.crop[1] == aug.resize_dims[1] - 512  # bottom crop
        assert 0 <= aug.crop[0] <= max(0, aug.resize_dims[0] - 1408)
        assert (aug.crop[2] - aug.crop[0], aug.crop[3] - aug.crop[1]) == (1408, 512)
        assert -5.4 <= aug.rotate <= 5.4
    assert {aug.flip for aug in draws} == {True, False}


def test_affine_maps_known_pixel_and_image() -> None:
    # s = 0.5, crop (10, 20)-(110, 70), flip, rotate 90 deg about the crop centre (50, 25):
    # (100, 80) -> (50, 40) -> (40, 20) -> flip (60, 20) -> rot (20 - 25 + 50, -(60 - 50) + 25)
    aug = ImageAug(0.5, (120, 90), (10, 20, 110, 70), True, 90.0)
    post_rot, post_tran = aug_affine(aug)
    np.testing.assert_allclose(post_rot @ [100.0, 80.0] + post_tran, [45.0, 15.0], atol=1e-4)
    # the image moves the same way: a bright block centred on source pixel (100, 80)
    img = np.zeros((180, 240, 3), np.uint8)
    img[72:88, 92:108] = 255
    out = np.asarray(augment_image(Image.fromarray(img), aug))[..., 0].astype(float)
    v, u = np.nonzero(out > 128)
    assert abs(u.mean() - 45.0) < 1.5 and abs(v.mean() - 15.0) < 1.5


def test_normalisation_rb_swap() -> None:
    red = np.zeros((2, 3, 3), np.uint8)
    red[..., 0] = 255
    out = normalize_image(red)  # quirk 15: channel 0 holds normalised B
    np.testing.assert_allclose(out[:, 0, 0], [(0 - 123.675) / 58.395, (0 - 116.28) / 57.12,
                                              (255 - 103.53) / 57.375], rtol=1e-6)
    fixed = normalize_image(red, swap_rb=False)
    np.testing.assert_allclose(fixed[:, 0, 0], [(255 - 123.675) / 58.395, (0 - 116.28) / 57.12,
                                                (0 - 103.53) / 57.375], rtol=1e-6)


@pytest.mark.parametrize('swap_rb', [True, False])
def test_normalisation_table_equals_the_arithmetic_bitwise(swap_rb) -> None:
    # every uint8 level in every channel, against (x - mean) * (1 / std) in float32
    img = np.stack(np.meshgrid(np.arange(256), np.arange(3), indexing='ij'), -1)[..., 0]
    img = np.stack([img[:, 0], np.roll(img[:, 1], 7), np.roll(img[:, 2], 99)], -1)
    img = img.reshape(16, 16, 3).astype(np.uint8)
    mean = np.asarray([123.675, 116.28, 103.53], np.float32)
    stdinv = (1 / np.asarray([58.395, 57.12, 57.375])).astype(np.float32)
    source = img[..., ::-1] if swap_rb else img
    expected = ((source.astype(np.float32) - mean) * stdinv).transpose(2, 0, 1)
    out = torch.full((2, 3, 16, 16), float('nan'))
    result = normalize_image(img, swap_rb, out=out[1])
    assert result.data_ptr() == out[1].data_ptr() and torch.isnan(out[0]).all()
    assert np.array_equal(out[1].numpy(), expected)
    with pytest.raises(ValueError, match='uint8'):
        normalize_image(img.astype(np.int64))


def _texture(c: int, f: int) -> np.ndarray:
    return np.random.default_rng(c).integers(0, 255, (112, 200, 3))  # same for every frame


def test_shared_augmentation_and_ordering(world) -> None:
    frames = world.frames(3, n_points=1, image_fn=_texture)
    results = dict(curr=frames[0], adjacent=frames[1:])
    out = PrepareImageInputs(DATA_CONFIG, True, GEOMETRY, seed=1)(results)
    cameras = out['img_inputs']
    assert cameras.bda is None
    imgs, sensor2egos, ego2globals = cameras.imgs, cameras.sensor2egos, cameras.ego2globals
    intrins, post_rots, post_trans = cameras.intrins, cameras.post_rots, cameras.post_trans
    n, n_frames = len(CAMS), 3
    assert imgs.shape == (n * n_frames, 3, 64, 176) and imgs.dtype == torch.float32
    assert out['cam_names'] == CAMS
    for c in range(n):  # camera-major images, one augmentation per camera for all frames
        for f in range(1, n_frames):
            assert torch.equal(imgs[c * n_frames + f], imgs[c * n_frames])
    assert not torch.equal(imgs[0], imgs[n_frames])
    for f in range(n_frames):  # frame-major transforms
        for c, cam in enumerate(CAMS):
            i = f * n + c
            cam_info = frames[f]['cams'][cam]
            np.testing.assert_allclose(
                sensor2egos[i], world.pose(cam_info['sensor2ego_translation'],
                                     cam_info['sensor2ego_rotation']), atol=1e-5)
            np.testing.assert_allclose(
                ego2globals[i], world.pose(cam_info['ego2global_translation'],
                                     cam_info['ego2global_rotation']), atol=1e-4)
            assert torch.equal(intrins[i], intrins[c])
            assert torch.equal(post_rots[i], post_rots[c])
            assert torch.equal(post_trans[i], post_trans[c])
    assert post_trans[:, 2].abs().max() == 0 and torch.all(post_rots[:, 2] == torch.tensor(
        [0.0, 0.0, 1.0]))


def test_lidar_key_ego_flag(world) -> None:
    frames = world.frames(2, n_points=1)
    results = dict(curr=frames[0], adjacent=frames[1:])
    default = PrepareImageInputs(DATA_CONFIG, False, GEOMETRY)(dict(results))['img_inputs']
    fixed = PrepareImageInputs(DATA_CONFIG, False, occ3d_geometry(lidar_key_ego=True))(
        dict(results))['img_inputs']

    def cam2global(cameras, i):
        return cameras.ego2globals[i].double() @ cameras.sensor2egos[i].double()

    lidar_ego = torch.from_numpy(world.pose(frames[0]['ego2global_translation'],
                                      frames[0]['ego2global_rotation']))
    for i in range(4):
        # camera -> global unchanged; the key ego (entry 0) becomes the key LiDAR ego
        torch.testing.assert_close(cam2global(fixed, i), cam2global(default, i), atol=2e-4,
                                   rtol=0)
        keyego2cam = torch.linalg.inv(fixed.ego2globals[0].double()) @ cam2global(fixed, i)
        torch.testing.assert_close(keyego2cam, torch.linalg.inv(lidar_ego) @ cam2global(
            default, i), atol=2e-4, rtol=0)


def test_missing_image_names_file(world) -> None:
    frames = world.frames(1, n_points=1)
    frames[0]['cams']['CAM_BACK']['data_path'] = '/nonexistent/back.jpg'
    with pytest.raises(FileNotFoundError, match='/nonexistent/back.jpg'):
        PrepareImageInputs(DATA_CONFIG, False, GEOMETRY, sequential=False)(dict(curr=frames[0]))
