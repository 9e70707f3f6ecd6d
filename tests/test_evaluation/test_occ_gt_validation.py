"""Occ3D GT read in one place (``occ_io.load_occ_gt`` / ``check_occ_gt_headers``): a damaged or
wrong ``labels.npz`` names its file, its sample token and what was expected; ``tools/test.py``
checks the split before inference (``check_split_ground_truth``) and ``--out`` is never left
partial (``OccMetric`` stages predictions)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.occ_gt import LoadOccGTFromFile
from mmdet3d.engine.runner_setup import check_split_ground_truth
from mmdet3d.evaluation.functional.occ_io import OccGTError, check_occ_gt_headers, load_occ_gt
from mmdet3d.evaluation.metrics.occ_metric import OccMetric
from mmdet3d.structures import OccDataSample

SHAPE = (4, 3, 2)


def write_gt(folder: Path, shape=SHAPE, drop: str | None = None, **overrides) -> Path:
    """A valid labels.npz (semantics: class 4 in x=0, else free), optionally altered."""
    folder.mkdir(parents=True, exist_ok=True)
    semantics = np.full(shape, 17, np.uint8)
    semantics[0] = 4
    arrays = dict(semantics=semantics, mask_lidar=np.ones(shape, np.uint8),
                  mask_camera=np.ones(shape, np.uint8))
    arrays.update(overrides)
    arrays.pop(drop, None)
    np.savez_compressed(folder / 'labels.npz', **arrays)
    return folder


def truncate(folder: Path) -> Path:
    path = folder / 'labels.npz'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    return folder


def test_a_valid_file_loads_as_uint8(tmp_path):
    gt = load_occ_gt(str(write_gt(tmp_path / 'a', mask_camera=np.ones(SHAPE, bool))),
                     token='t', shape=SHAPE)
    assert {k: (v.dtype, v.shape) for k, v in gt.items()} == {
        k: (np.uint8, SHAPE) for k in ('semantics', 'mask_lidar', 'mask_camera')}
    assert gt['semantics'][0].tolist() == np.full((3, 2), 4).tolist()


@pytest.mark.parametrize('make, problem', [
    (lambda d: truncate(write_gt(d)), r'damaged file \(BadZipFile'),
    (lambda d: write_gt(d, drop='mask_camera'), r"lacks the arrays \['mask_camera'\]"),
    (lambda d: write_gt(d, semantics=np.full(SHAPE, 20, np.uint8)), 'semantics holds values 20'),
    (lambda d: write_gt(d, mask_lidar=np.full(SHAPE, 2, np.uint8)), 'mask_lidar holds values'),
    (lambda d: write_gt(d, semantics=np.zeros(SHAPE, np.float32)), 'semantics has dtype float32'),
    (lambda d: write_gt(d, mask_camera=np.ones((4, 3, 3), np.uint8)), 'array shapes'),
    (lambda d: write_gt(d, shape=(2, 3, 2)),
     r'shape \(2, 3, 2\), but the prediction .* has \(4, 3, 2\)'),
])
def test_bad_files_name_the_file_the_token_and_what_was_expected(tmp_path, make, problem):
    folder = make(tmp_path / 'scene-1' / 'tok7')
    with pytest.raises(OccGTError, match=problem) as error:
        load_occ_gt(str(folder), token='tok7', shape=SHAPE)
    message = str(error.value)
    assert f'{folder}/labels.npz (sample tok7)' in message and 'expected an .npz' in message


def test_the_transform_names_the_token(tmp_path):
    folder = truncate(write_gt(tmp_path / 'tok3'))
    with pytest.raises(OccGTError, match=r'labels.npz \(sample tok3\): damaged file'):
        LoadOccGTFromFile()(dict(occ_gt_path=str(folder), sample_idx='tok3'))


def test_header_check_finds_the_bad_file_of_a_split(tmp_path):
    good = [(str(write_gt(tmp_path / f'tok{i}')), f'tok{i}') for i in range(3)]
    check_occ_gt_headers(good)
    check_occ_gt_headers(good, SHAPE)
    with pytest.raises(OccGTError,
                       match=r'shape \(4, 3, 2\), but the prediction .* has \(200, 200, 16\)'):
        check_occ_gt_headers(good, (200, 200, 16))
    other_shape = str(write_gt(tmp_path / 'tok5', shape=(2, 3, 2)))
    with pytest.raises(OccGTError, match='tok5/labels.npz \\(sample tok5\\): shape \\(2, 3, 2\\)'):
        check_occ_gt_headers(good + [(other_shape, 'tok5')])
    damaged = str(truncate(write_gt(tmp_path / 'tok6')))
    with pytest.raises(OccGTError, match='tok6/labels.npz \\(sample tok6\\): damaged file'):
        check_occ_gt_headers(good + [(damaged, 'tok6')])
    missing = str(write_gt(tmp_path / 'tok8', drop='semantics'))
    with pytest.raises(OccGTError, match=r"\(sample tok8\): lacks the arrays \['semantics'\]"):
        check_occ_gt_headers([(missing, 'tok8')])
    with pytest.raises(FileNotFoundError, match=r'tok9/labels.npz \(sample tok9\)'):
        check_occ_gt_headers([(str(tmp_path / 'tok9'), 'tok9')])


class Split:
    """The two methods of a dataset that ``check_split_ground_truth`` uses."""

    def __init__(self, folders):
        self.folders = folders

    def __len__(self):
        return len(self.folders)

    def get_data_info(self, index):
        return dict(sample_idx=f'tok{index}', occ_gt_path=str(self.folders[index]))


def test_split_check_before_inference(tmp_path):
    folders = [write_gt(tmp_path / f'tok{i}') for i in range(3)]
    assert check_split_ground_truth(Split(folders), SHAPE) == 3
    truncate(folders[1])
    with pytest.raises(OccGTError, match=r'\(sample tok1\): damaged file'):
        check_split_ground_truth(Split(folders), SHAPE)


def predicted(token: str, occ_path: Path) -> dict:
    sample = OccDataSample(metainfo=dict(sample_idx=token, scene_name='scene-1',
                                         occ_path=str(occ_path), eval_thresholds=[0.35]))
    sample.pred_occ = torch.full((1, *SHAPE), 17, dtype=torch.uint8)
    return sample.to_dict()


def test_out_is_never_left_partial(tmp_path):
    out = tmp_path / 'pred'
    good, bad = write_gt(tmp_path / 'gts' / 'a'), truncate(write_gt(tmp_path / 'gts' / 'b'))
    metric = OccMetric(save_dir=str(out))
    with pytest.raises(OccGTError, match=r'\(sample b\)'):
        metric.process({}, [predicted('a', good), predicted('b', bad)])
    assert not out.exists()

    metric = OccMetric(save_dir=str(out))
    metric.process({}, [predicted('a', good), predicted('c', write_gt(tmp_path / 'gts' / 'c'))])
    metric.compute_metrics(metric.results)
    assert sorted(p.name for p in (out / 'scene-1').iterdir()) == ['a.npz', 'c.npz']
    assert not Path(f'{out}.partial').exists()
