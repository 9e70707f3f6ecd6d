"""Visualisation: palette, BEV projection, the occupancy and render figure tools."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmdet3d.analysis.render_inspection import denormalize_image, range_to_z_factor
from mmdet3d.datasets.transforms.image_inputs import normalize_image
from mmdet3d.engine.runner_setup import load_config
from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL
from mmdet3d.structures.voxel_grids import swap_x_z
from mmdet3d.visualization.occ_figures import bev_figure_size
from mmdet3d.visualization.occ_palette import (OCC3D_PALETTE, UNOBSERVED, UNOBSERVED_COLOR,
                                               bev_disagreement, bev_image, bev_top_labels,
                                               label_colors)
from mmdet3d.visualization.render_figures import camera_figure_size

from tools import visualize_occupancy, visualize_render

CAMERAS = ['CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK',
           'CAM_BACK_RIGHT']
CAR, TRUCK, ROAD = 4, 10, 11


def test_palette_covers_the_18_occ3d_classes():
    assert len(CLASS_NAMES) == 18 and CLASS_NAMES[FREE_LABEL] == 'free'
    assert CLASS_NAMES[CAR] == 'car' and CLASS_NAMES[16] == 'vegetation'
    assert OCC3D_PALETTE.shape == (18, 3) and OCC3D_PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in OCC3D_PALETTE}) == 18  # every class its own colour
    assert tuple(OCC3D_PALETTE[FREE_LABEL]) == (255, 255, 255)
    assert tuple(UNOBSERVED_COLOR) not in {tuple(c) for c in OCC3D_PALETTE}
    colors = label_colors(np.array([[CAR, UNOBSERVED], [FREE_LABEL, 0]]))
    assert colors.shape == (2, 2, 3)
    np.testing.assert_array_equal(colors[0, 0], OCC3D_PALETTE[CAR])
    np.testing.assert_array_equal(colors[0, 1], UNOBSERVED_COLOR)
    with pytest.raises(ValueError, match='labels must lie'):
        label_colors(np.array([18]))


def _hand_volume() -> tuple[np.ndarray, np.ndarray]:
    """(3, 2, 4) volume: column (0,0) road z0 + car z2; (1,0) truck z3; (2,1) free; mask."""
    vol = np.full((3, 2, 4), FREE_LABEL, np.uint8)
    vol[0, 0, 0], vol[0, 0, 2] = ROAD, CAR
    vol[1, 0, 3] = TRUCK
    vol[0, 1, 1] = vol[1, 1, 1] = ROAD
    mask = np.ones_like(vol, dtype=bool)
    mask[0, 0, 2] = False  # the car is hidden -> road becomes the top visible voxel
    mask[1, 1] = False  # a whole column unobserved
    return vol, mask


def test_bev_picks_the_highest_non_free_voxel():
    vol, mask = _hand_volume()
    labels, height = bev_top_labels(vol)
    np.testing.assert_array_equal(labels, [[CAR, ROAD], [TRUCK, ROAD], [FREE_LABEL, FREE_LABEL]])
    np.testing.assert_array_equal(height, [[2, 1], [3, 1], [-1, -1]])
    labels, height = bev_top_labels(vol, mask)
    np.testing.assert_array_equal(labels, [[ROAD, ROAD], [TRUCK, UNOBSERVED],
                                           [FREE_LABEL, FREE_LABEL]])
    np.testing.assert_array_equal(height, [[0, 1], [3, -1], [-1, -1]])

    flat = bev_image(vol, shade=False)  # display: forward (+x) up, left (+y) left
    assert flat.shape == (3, 2, 3)
    np.testing.assert_array_equal(flat[2, 1], OCC3D_PALETTE[CAR])  # x=0, y=0: bottom right
    np.testing.assert_array_equal(flat[1, 1], OCC3D_PALETTE[TRUCK])
    np.testing.assert_array_equal(flat[0, 0], OCC3D_PALETTE[FREE_LABEL])
    shaded = bev_image(vol, shade=True, min_brightness=0.5)
    np.testing.assert_array_equal(shaded[1, 1], OCC3D_PALETTE[TRUCK])  # top layer: unchanged
    np.testing.assert_allclose(shaded[2, 1], np.round(OCC3D_PALETTE[CAR] * (0.5 + 0.5 * 2 / 3)),
                               atol=1)
    np.testing.assert_array_equal(shaded[0, 0], OCC3D_PALETTE[FREE_LABEL])


def test_bev_disagreement():
    vol, mask = _hand_volume()
    pred = vol.copy()
    pred[0, 0, 0] = TRUCK  # 1 of the column's 4 voxels wrong
    pred[1, 1, 1] = CAR  # wrong, but the column is unobserved
    frac = bev_disagreement(vol, pred, mask)[::-1, ::-1]  # back to (X, Y)
    assert frac[0, 0] == pytest.approx(1 / 3) and frac[1, 0] == 0 and np.isnan(frac[1, 1])
    assert bev_disagreement(vol, pred)[::-1, ::-1][1, 1] == pytest.approx(0.25)


def _write_gt(folder: Path, semantics: np.ndarray) -> None:
    folder.mkdir(parents=True)
    mask = np.ones_like(semantics)
    mask[:, :100] = 0  # the right half (y < 0) unseen by the cameras
    np.savez_compressed(folder / 'labels.npz', semantics=semantics, mask_camera=mask,
                        mask_lidar=np.ones_like(semantics))


def _save_pred(root: Path, scene: str, token: str, semantics: np.ndarray) -> None:
    (root / scene).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / scene / f'{token}.npz', semantics=semantics)


def _color_columns(img: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Image columns holding at least 20 pixels of exactly ``rgb``."""
    return np.nonzero((img[..., :3] == rgb).all(-1).sum(0) >= 20)[0]


def test_visualize_occupancy_cli(tmp_path, capsys):
    gt = np.full((200, 200, 16), FREE_LABEL, np.uint8)
    gt[..., 0] = ROAD
    gt[100:160, 120:180, 1:4] = CAR  # ahead-left of the ego (x, y > 0): inside the mask
    pred = gt.copy()
    pred[100:160, 120:180, 1:4] = TRUCK
    for i, token in enumerate(['tok_b', 'tok_a']):
        _write_gt(tmp_path / 'data' / 'gts' / 'scene-1' / token, gt)
        _save_pred(tmp_path / 'pred', 'scene-1', token, pred)
    infos = [dict(token=t, timestamp=ts, occ_path=f'data/gts/scene-1/{t}')
             for t, ts in (('tok_a', 2), ('tok_b', 1), ('tok_unpredicted', 0))]
    dump_infos(str(tmp_path / 'infos.pkl'), infos, 'v1.0-mini')

    paths = visualize_occupancy.main(['--pred-dir', str(tmp_path / 'pred'), '--info',
                                      str(tmp_path / 'infos.pkl'), '--path-prefix', str(tmp_path),
                                      '--out', str(tmp_path / 'out'), '--max-samples', '1',
                                      '--no-shade'])
    assert paths == [str(tmp_path / 'out' / 'scene-1' / 'tok_b.png')]  # timestamp order
    assert capsys.readouterr().out.split() == paths
    img = np.asarray(Image.open(paths[0]).convert('RGB'))
    width, height = bev_figure_size(3)
    assert (img.shape[1], img.shape[0]) == (width, height)
    maps = img[:, :round(width * 0.8)]  # the three maps, without the legend
    car_cols = _color_columns(maps, OCC3D_PALETTE[CAR])
    truck_cols = _color_columns(maps, OCC3D_PALETTE[TRUCK])
    assert len(car_cols) and len(truck_cols)
    assert car_cols.max() < truck_cols.min()  # GT map (car) left of the prediction (truck)
    assert car_cols.max() < width / 3 < truck_cols.min() < 2 * width / 3
    assert len(_color_columns(maps, UNOBSERVED_COLOR))  # the camera mask is drawn

    paths = visualize_occupancy.main(['--pred-dir', str(tmp_path / 'pred'), '--gt-root',
                                      str(tmp_path / 'data' / 'gts'), '--out',
                                      str(tmp_path / 'out2'), '--mask', 'none'])
    names = sorted(Path(p).name for p in paths)
    assert names == ['tok_a.png', 'tok_b.png']
    assert not len(_color_columns(np.asarray(Image.open(paths[0]).convert('RGB')),
                                  UNOBSERVED_COLOR))

    only = visualize_occupancy.main(['--pred-dir', str(tmp_path / 'pred'), '--out',
                                     str(tmp_path / 'out3')])
    assert Image.open(only[0]).size == bev_figure_size(1)
    _save_pred(tmp_path / 'bad', 'scene-1', 'tok_a', pred[None])
    with pytest.raises(ValueError, match='must be \\(X, Y, Z\\)'):
        visualize_occupancy.main(['--pred-dir', str(tmp_path / 'bad'), '--out',
                                  str(tmp_path / 'out4')])
    with pytest.raises(FileNotFoundError, match='no prediction files'):
        visualize_occupancy.main(['--pred-dir', str(tmp_path / 'empty'), '--out',
                                  str(tmp_path / 'out4')])


def test_range_to_z_factor_inverts_the_augmented_pixel():
    k = np.array([[250.0, 0, 96], [0, 250.0, 54], [0, 0, 1]])
    rot, tran = np.diag([0.7, 0.7, 1.0]), np.array([-10.0, -20.0, 0.0])
    rng = np.random.default_rng(0)
    uv_pre = rng.uniform([0, 0], [192, 108], size=(50, 2))
    pixels = np.floor(uv_pre @ rot[:2, :2].T + tran[:2]).astype(np.int64)
    d_cam = np.concatenate([(uv_pre + 0.5 - k[:2, 2]) / k[[0, 1], [0, 1]], np.ones((50, 1))], 1)
    expected = 1 / np.linalg.norm(d_cam, axis=1)
    np.testing.assert_allclose(range_to_z_factor(pixels, k, rot, tran), expected, rtol=3e-3)
    assert not np.allclose(range_to_z_factor(pixels, k, rot, tran), 1.0, rtol=3e-3)


def test_denormalize_image_inverts_normalize():
    img = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    for swap_rb in (True, False):
        np.testing.assert_array_equal(denormalize_image(normalize_image(img, swap_rb), swap_rb),
                                      img)


def test_visualize_render_writes_one_png_per_camera(tiny_render_config, tmp_path,
                                                    capsys):
    with pytest.raises(SystemExit):
        visualize_render.parse_args([tiny_render_config])  # neither a checkpoint nor --random-init
    out = tmp_path / 'render'
    paths = visualize_render.main([tiny_render_config, '--random-init', '--sample-index', '1',
                                   '--out', str(out), '--max-rays-per-camera', '150',
                                   '--chunk', '64', '--cfg-options',
                                   'model.renderer.samples_per_ray=16',
                                   'model.renderer.prop_samples_per_ray=8'])
    assert paths == [str(out / f'{cam}.png') for cam in CAMERAS]
    assert capsys.readouterr().out.split() == paths
    expected = camera_figure_size(tuple(Config.fromfile(tiny_render_config)
                                        .train_dataloader.dataset.pipeline[0]
                                        .data_config.input_size))
    for path in paths:
        img = np.asarray(Image.open(path).convert('RGB'))
        assert (img.shape[1], img.shape[0]) == expected
        assert img.std() > 10  # not a blank canvas


def test_render_inspection_matches_the_rays(tiny_render_config):
    """Per camera: the rays of the key frame and that camera, GT read at their own pixels."""
    from mmdet3d.utils import register_all_modules
    from mmdet3d.analysis.render_inspection import build_model, inspect_render
    from mmdet3d.analysis.training_sample import load_training_sample

    register_all_modules()
    cfg = load_config(tiny_render_config, {'model.renderer.samples_per_ray': 8,
                                           'model.renderer.prop_samples_per_ray': 4})
    torch.manual_seed(0)
    sample = load_training_sample(cfg, 0)
    cams = inspect_render(build_model(cfg), sample, chunk=50, max_rays_per_camera=80)
    rays = sample.packed['data_samples'].gt_rays
    idx, depth, label, coor = rays.frame_cam, rays.depth, rays.labels, rays.pixels
    key = idx[:, 0] == 3
    height, width = sample.results['img_inputs'].image_size
    assert [c.name for c in cams] == sample.results['cam_names']
    for n, cam in enumerate(cams):
        mine = key & (idx[:, 1] == n)
        assert cam.num_total == int(mine.sum()) > 0
        assert len(cam.pixels) == min(80, cam.num_total)
        assert cam.image.shape == (height, width, 3) and cam.depth_kind == 'z-depth'
        assert ((cam.pixels >= 0) & (cam.pixels < [width, height])).all()
        # every drawn ray is one of this camera's key-frame rays, with its own GT
        table = {(int(u), int(v), round(float(d), 4)): int(lab) for (u, v), d, lab
                 in zip(coor[mine], depth[mine], label[mine])}
        for (u, v), d, lab in zip(cam.pixels, cam.gt_depth, cam.gt_label):
            assert table[(int(u), int(v), round(float(d), 4))] == lab
        assert np.isfinite(cam.depth).all() and (cam.depth >= 0).all()
        assert ((cam.label >= 0) & (cam.label < 17)).all()


def _oracle_fields(sample, shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Opaque density and one-hot logits of the sample's Occ3D GT, in the BEV-augmented frame,
    optionally rolled by ``shift`` voxels along x (a wrong world), in the model's (1, Z, Y, X, C)
    layout."""
    from mmdet3d.formats.occ3d_labels import load_occ_gt

    sem = torch.from_numpy(load_occ_gt(sample.results['occ_path'])['semantics'].astype(int))
    bda = sample.results['img_inputs'].bda
    sem = sem.flip(0) if bda[0, 0] < 0 else sem
    sem = sem.flip(1) if bda[1, 1] < 0 else sem
    sem = sem.roll(shift, 0)
    occ = (sem != FREE_LABEL).float()
    logits = torch.nn.functional.one_hot(sem.clamp(max=16), 17).float() * 10 * occ[..., None]
    return swap_x_z((occ * 20)[None, ..., None]), swap_x_z(logits[None])


@pytest.mark.parametrize('shift', [0, 50])
def test_render_inspection_with_oracle_fields(tiny_render_config, monkeypatch, shift):
    """Fields made from the Occ3D GT render the LiDAR depth and class at the drawn pixels; a world
    shifted by 20 m does not. The rendering stops at the first voxel face, before the point:
    ~1 m on the grazing ground rays of this tiny world, hence the loose depth bound."""
    from mmdet3d.utils import register_all_modules
    from mmdet3d.analysis.render_inspection import build_model, inspect_render
    from mmdet3d.analysis.training_sample import load_training_sample

    register_all_modules()
    cfg = load_config(tiny_render_config, {'geometry.label_grid.shape': [200, 200, 16],
                                           'geometry.model_grid_shape': [200, 200, 16]})
    torch.manual_seed(0)
    sample = load_training_sample(cfg, 1)
    model = build_model(cfg)
    density, semantics = _oracle_fields(sample, shift)
    monkeypatch.setattr(model, 'forward', lambda inputs, data_samples=None, mode='tensor':
                        dict(density=density, semantics=semantics))
    cams = inspect_render(model, sample, chunk=256, max_rays_per_camera=60)
    err = np.concatenate([np.abs(c.depth - c.gt_depth) for c in cams])
    same = np.concatenate([c.label == c.gt_label for c in cams])
    if shift == 0:
        assert np.median(err) < 1.5 and same.mean() > 0.65
    else:
        assert np.median(err) > 3.0 and same.mean() < 0.45
