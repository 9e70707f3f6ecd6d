"""Per-class voxel counts of a split (the render class weights' input) on hand-built GT."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdet3d.analysis.class_frequencies import class_voxel_counts
from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.models.losses.class_weights import class_balanced_log_weights

REPO_ROOT = Path(__file__).resolve().parents[2]
CAR, ROAD, SIDEWALK, MANMADE, FREE = 4, 11, 13, 15, 17
# two (X, Y, Z) = (2, 3, 1) samples with their camera and LiDAR masks
SEMANTICS = [np.array([[ROAD, ROAD, CAR], [MANMADE, MANMADE, FREE]]),
             np.array([[ROAD, SIDEWALK, FREE], [MANMADE, MANMADE, MANMADE]])]
CAMERA = [np.array([[1, 1, 1], [1, 0, 1]]), np.array([[1, 1, 1], [1, 0, 0]])]
LIDAR = [np.array([[1, 0, 0], [1, 1, 1]]), np.array([[0, 0, 0], [1, 1, 1]])]


def write_split(root) -> str:
    infos = []
    for i, (semantics, camera, lidar) in enumerate(zip(SEMANTICS, CAMERA, LIDAR)):
        folder = root / 'gts' / f's{i}'
        folder.mkdir(parents=True)
        np.savez(folder / 'labels.npz', semantics=semantics[..., None].astype(np.uint8),
                 mask_camera=camera[..., None].astype(np.uint8),
                 mask_lidar=lidar[..., None].astype(np.uint8))
        infos.append(dict(token=f's{i}', occ_path=f'gts/s{i}'))
    dump_infos(str(root / 'train.pkl'), infos, 'v1.0-mini')
    return str(root / 'train.pkl')


def expected(**counts: int) -> list[int]:
    out = [0] * 17
    for name, value in counts.items():
        out[globals()[name]] = value
    return out


@pytest.mark.parametrize('mask,counts', [
    ('camera', expected(ROAD=3, CAR=1, SIDEWALK=1, MANMADE=2)),
    ('lidar', expected(ROAD=1, MANMADE=5)),
    ('none', expected(ROAD=3, CAR=1, SIDEWALK=1, MANMADE=5)),
])
def test_counts_per_mask(tmp_path, mask, counts):
    ann = write_split(tmp_path)
    found, num = class_voxel_counts(ann, str(tmp_path), mask)
    assert num == 2
    assert found.tolist() == counts


def test_bad_mask_and_missing_prefix(tmp_path):
    ann = write_split(tmp_path)
    with pytest.raises(ValueError, match='mask must be one of'):
        class_voxel_counts(ann, str(tmp_path), 'radar')
    with pytest.raises(FileNotFoundError, match='gts/s0'):
        class_voxel_counts(ann, str(tmp_path / 'elsewhere'))


def test_cli_prints_counts_weights_and_the_option(tmp_path):
    ann = write_split(tmp_path)
    out = subprocess.run(
        [sys.executable, 'tools/misc/class_frequencies.py', '--ann', ann, '--path-prefix',
         str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    counts = expected(ROAD=3, CAR=1, SIDEWALK=1, MANMADE=2)
    assert ('model.ray_class_weights.class_frequencies=[0,0,0,0,1,0,0,0,0,0,0,3,0,1,0,2,0]'
            in out)
    weights = class_balanced_log_weights(counts)
    road = next(line for line in out.splitlines() if line.startswith('driveable_surface'))
    assert road.split()[1:3] == ['3', f'{weights[ROAD].item():.3f}']
