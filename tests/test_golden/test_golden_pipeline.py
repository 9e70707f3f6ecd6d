"""Golden vectors of the original pipeline functions (fn_img_transform, fn_generate_rays)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmdet3d.datasets.transforms.bev_aug import augment_rays
from mmdet3d.datasets.transforms.image_inputs import (ImageAug, aug_affine, augment_image,
                                                      normalize_image)
from mmdet3d.datasets.transforms.ray_generation import GenerateRays
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.occ3d import LIDARSEG_TO_OCC3D
from mmdet3d.testing.geometry import occ3d_geometry


@pytest.fixture(scope='module')
def img_golden(golden_dir: Path):
    return np.load(golden_dir / 'fn_img_transform.npz')


@pytest.fixture(scope='module')
def rays_golden(golden_dir: Path):
    return np.load(golden_dir / 'fn_generate_rays.npz')


@pytest.mark.parametrize('case', range(4))
def test_img_transform(img_golden, case: int) -> None:
    g = {k[len(f'case{case}_'):]: v for k, v in img_golden.items()
         if k.startswith(f'case{case}_')}
    aug = ImageAug(float(g['in_resize']), tuple(int(v) for v in g['in_resize_dims_wh']),
                   tuple(int(v) for v in g['in_crop_xyxy']), bool(g['in_flip']),
                   float(g['in_rotate_deg']))
    post_rot, post_tran = aug_affine(aug)
    np.testing.assert_allclose(post_rot, g['out_post_rot_2x2'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(post_tran, g['out_post_tran_2'], rtol=0, atol=1e-4)
    out = np.asarray(augment_image(Image.fromarray(img_golden['in_image_rgb_uint8']), aug))
    np.testing.assert_array_equal(out, g['out_image_uint8'])
    if case == 1:
        norm = normalize_image(out)[:, 200:264, 600:728]
        np.testing.assert_allclose(norm.numpy(), g['out_normalized_chw_rows200_264_cols600_728'],
                                   rtol=0, atol=1e-5)


def test_normalize_small(img_golden) -> None:
    out = normalize_image(img_golden['norm_small_in_rgb_uint8'])
    assert out.dtype == torch.float32 and out.shape == (3, 20, 30)
    np.testing.assert_allclose(out.numpy(), img_golden['norm_small_out_chw'], rtol=0, atol=1e-5)


def test_lidarseg_map(rays_golden) -> None:
    np.testing.assert_array_equal(LIDARSEG_TO_OCC3D, rays_golden['lidarseg_map'])


def _golden_frame(g, case: int, frame: int, cams: list[str], tmp_path: Path) -> dict:
    """A reduced render-frame info whose point and panoptic files hold the golden arrays."""
    key = f'case{case}_in_f{frame}_'
    lidar_path = tmp_path / f'c{case}f{frame}.pcd.bin'
    g[key + 'points'].astype(np.float32).tofile(lidar_path)
    panoptic_path = tmp_path / f'c{case}f{frame}_panoptic.npz'
    np.savez_compressed(panoptic_path, data=g[key + 'panoptic'])
    cam_infos = {
        cam: dict(sensor2ego_translation=g[key + 'cam_sensor2ego_translation'][n],
                  sensor2ego_rotation=g[key + 'cam_sensor2ego_rotation'][n],
                  ego2global_translation=g[key + 'cam_ego2global_translation'][n],
                  ego2global_rotation=g[key + 'cam_ego2global_rotation'][n],
                  cam_intrinsic=g[key + 'cam_cam_intrinsic'][n])
        for n, cam in enumerate(cams)}
    return dict(lidar_path=str(lidar_path), panoptic_path=str(panoptic_path), cams=cam_infos,
                lidar2ego_translation=g[key + 'lidar2ego_translation'],
                lidar2ego_rotation=g[key + 'lidar2ego_rotation'],
                ego2global_translation=g[key + 'ego2global_translation'],
                ego2global_rotation=g[key + 'ego2global_rotation'])


@pytest.mark.parametrize('case', [0, 1])
def test_generate_rays(rays_golden, case: int, tmp_path: Path) -> None:
    g = rays_golden
    cams = [str(c) for c in g['cam_names']]
    pre = f'case{case}_'
    frames = [_golden_frame(g, case, f, cams, tmp_path) for f in range(2)]
    h, w = (int(v) for v in g[pre + 'in_img_hw'])
    imgs = torch.zeros(1, 1, 1, 1).expand(18, 3, h, w)
    img_inputs = CameraInputs(
        imgs=imgs, sensor2egos=torch.zeros(18, 4, 4), ego2globals=torch.zeros(18, 4, 4),
        intrins=torch.from_numpy(g[pre + 'in_intrins']),
        post_rots=torch.from_numpy(g[pre + 'in_post_rots']),
        post_trans=torch.from_numpy(g[pre + 'in_post_trans']),
        bda=torch.from_numpy(g[pre + 'in_bda']))
    ignore = g[pre + 'in_ignore_classes'].tolist() or None
    geometry = occ3d_geometry(render_frame_ids=g[pre + 'in_render_frame_ids'].tolist())
    transform = GenerateRays(geometry, ignore_classes=ignore)
    out = transform(dict(render_frames=frames, img_inputs=img_inputs, cam_names=cams))
    # the original applies the BEV augmentation in its ray generation; here
    # LoadAnnotationsBEVDepth applies it to the rays with the rest of the ground truth
    rays = augment_rays(out['gt_rays'], g[pre + 'in_bda'])
    idx, depth, label = rays.frame_cam, rays.depth, rays.labels
    np.testing.assert_array_equal(idx.numpy(), g[pre + 'out_ray_idx'])
    np.testing.assert_array_equal(label.numpy(), g[pre + 'out_ray_label'])
    assert label.dtype == torch.int64
    np.testing.assert_allclose(depth.numpy(), g[pre + 'out_ray_depth'], rtol=0, atol=2e-4)
    # The original projects in float32 through global coordinates of ~1600 m, which moves each
    # camera by ~1e-4 m: its directions differ from exact ones by ~1e-4 m / depth (rad). The
    # float64 re-implementation here is exact; compare within that float32 error model.
    dir_err = np.abs(rays.directions.numpy() - g[pre + 'out_directions']).max(axis=1)
    assert np.all(dir_err * depth.numpy() < 3e-4), (dir_err * depth.numpy()).max()
    assert dir_err.max() < 1e-4 and np.median(dir_err) < 5e-6
    np.testing.assert_allclose(rays.origins.numpy(), g[pre + 'out_origins'], rtol=0, atol=3e-4)
    # coor = floor of the augmented pixel: the original's float32 pixel error (up to ~0.1 px for
    # near points) flips the floor of pixels close to an integer boundary.
    coor_diff = np.abs(rays.pixels.numpy() - g[pre + 'out_coor'])
    assert coor_diff.max() <= 1 and np.any(coor_diff, axis=1).mean() < 0.015
