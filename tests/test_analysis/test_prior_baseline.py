"""The prior baseline (per-voxel most frequent train label) on hand-built Occ3D ground truth."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdet3d.analysis.prior_baseline import (evaluate_prior, fit_prior, most_frequent_labels,
                                             prior_miou)
from mmdet3d.formats.info_pkl import dump_infos

REPO_ROOT = Path(__file__).resolve().parents[2]
CAR, ROAD, FREE = 4, 11, 17
# (X, Y, Z) = (2, 2, 1) train volumes; per-voxel modes: ROAD, FREE (2 of 3), CAR (2 of 3), FREE
TRAIN = [np.array([[ROAD, FREE], [CAR, FREE]]), np.array([[ROAD, FREE], [FREE, FREE]]),
         np.array([[ROAD, CAR], [CAR, FREE]])]
PRIOR = np.array([[ROAD, FREE], [CAR, FREE]])[..., None]
VAL = np.array([[ROAD, ROAD], [CAR, FREE]])[..., None]


def write_split(root: Path, name: str, volumes: list[np.ndarray],
                camera_masks: list[np.ndarray] | None = None) -> str:
    """Write ``<root>/gts/<name>_<i>/labels.npz`` and an info pkl pointing at them."""
    infos = []
    for i, semantics in enumerate(volumes):
        semantics = semantics.reshape(2, 2, 1).astype(np.uint8)
        mask = np.ones_like(semantics) if camera_masks is None else camera_masks[i]
        folder = root / 'gts' / f'{name}_{i}'
        folder.mkdir(parents=True)
        np.savez(folder / 'labels.npz', semantics=semantics, mask_lidar=np.ones_like(semantics),
                 mask_camera=mask.astype(np.uint8))
        infos.append(dict(token=f'{name}_{i}', occ_path=str(folder)))
    path = root / f'{name}.pkl'
    dump_infos(str(path), infos, 'v1.0-mini')
    return str(path)


def test_mode_per_voxel_with_ties_to_the_smallest_label():
    assert np.array_equal(most_frequent_labels(TRAIN), PRIOR[..., 0])
    tie = most_frequent_labels([np.array([FREE, CAR, 3]), np.array([CAR, FREE, 5])])
    assert tie.dtype == np.uint8 and tie.tolist() == [CAR, CAR, 3]


@pytest.mark.parametrize('volumes, match', [
    ([], 'at least one'),
    ([np.zeros((2, 2)), np.zeros((2, 3))], 'shape'),
    ([np.full((2, 2), 18)], 'outside'),
])
def test_bad_volumes_are_rejected(volumes, match):
    with pytest.raises(ValueError, match=match):
        most_frequent_labels(volumes)


def test_fit_and_evaluate_with_the_camera_mask(tmp_path):
    train = write_split(tmp_path, 'train', TRAIN)
    prior, num = fit_prior(train)
    assert num == 3 and np.array_equal(prior, PRIOR)
    # road: gt at 2 voxels, predicted at 1 -> IoU 1/2; car: IoU 1; other classes absent -> 75 %
    val = write_split(tmp_path, 'val', [VAL])
    metrics, num_val = evaluate_prior(prior, val)
    assert num_val == 1 and metrics['top_mIoU'] == 75.0
    assert prior_miou(train, val) == 75.0
    # the missed road voxel is outside the camera mask: road IoU 1 -> 100 %, unless the mask is off
    hidden = np.ones((2, 2, 1))
    hidden[0, 1, 0] = 0
    masked = write_split(tmp_path, 'masked', [VAL], [hidden])
    assert evaluate_prior(prior, masked)[0]['top_mIoU'] == 100.0
    assert evaluate_prior(prior, masked, use_image_mask=False)[0]['top_mIoU'] == 75.0


def test_relative_occ_paths_use_the_path_prefix(tmp_path):
    train = write_split(tmp_path, 'train', TRAIN)
    relative = tmp_path / 'relative.pkl'
    dump_infos(str(relative), [dict(token=f'train_{i}', occ_path=f'gts/train_{i}')
                               for i in range(3)], 'v1.0-mini')
    assert np.array_equal(fit_prior(str(relative), path_prefix=str(tmp_path))[0],
                          fit_prior(train)[0])
    with pytest.raises(FileNotFoundError, match='labels.npz'):
        fit_prior(str(relative), path_prefix=str(tmp_path / 'elsewhere'))


def test_info_without_occ_path_names_the_file(tmp_path):
    path = tmp_path / 'bad.pkl'
    dump_infos(str(path), [dict(token='t0')], 'v1.0-mini')
    with pytest.raises(KeyError, match='bad.pkl'):
        fit_prior(str(path))


def test_cli_prints_the_prior_miou_and_saves_the_volume(tmp_path):
    train = write_split(tmp_path, 'train', TRAIN)
    val = write_split(tmp_path, 'val', [VAL])
    out = tmp_path / 'prior.npz'
    result = subprocess.run(
        [sys.executable, 'tools/eval_prior.py', '--train-ann', train, '--val-ann', val,
         '--save', str(out)], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert 'prior mIoU: 75.00' in result.stdout
    assert np.array_equal(np.load(out)['semantics'], PRIOR)
