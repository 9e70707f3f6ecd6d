"""Occ3D GT read in one place (``mmdet3d.formats.occ3d_labels``: ``load_occ_gt`` /
``check_occ_gt_headers``): a damaged or wrong ``labels.npz`` names its file, its sample token and
what was expected; ``tools/test.py`` checks the split before inference
(``check_split_ground_truth``) and ``--out`` is never left partial (``OccMetric`` stages
predictions)."""
from __future__ import annotations

import io
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.occ_gt import LoadOccGTFromFile
from mmdet3d.engine.runner_setup import check_split_ground_truth
from mmdet3d.evaluation.metrics.occ_metric import OccMetric
from mmdet3d.formats import occ3d_labels
from mmdet3d.formats.occ3d_labels import OccGTError, check_occ_gt_headers, load_occ_gt
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
        LoadOccGTFromFile()(dict(occ_path=str(folder), sample_idx='tok3'))


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
        return dict(sample_idx=f'tok{index}', occ_path=str(self.folders[index]))


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


# --- the zip directory of labels.npz (issue 29): duplicate, unknown and oversized members ---

def npy_bytes(array: np.ndarray, extra: int = 0) -> bytes:
    """An .npy file of ``array``, followed by ``extra`` zero bytes that its header does not
    declare."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue() + bytes(extra)


def write_zip(folder: Path, members: list[tuple[str, bytes]],
              compression=zipfile.ZIP_DEFLATED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # zipfile warns of duplicate names
        with zipfile.ZipFile(folder / 'labels.npz', 'w', compression) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return folder


def valid_members(shape=(4, 4, 2)) -> list[tuple[str, bytes]]:
    return [(f'{key}.npy', npy_bytes(np.ones(shape, np.uint8)))
            for key in ('semantics', 'mask_lidar', 'mask_camera')]


def set_directory_size(folder: Path, member: str, file_size: int) -> None:
    """Rewrite the uncompressed size of ``member`` in the zip central directory only."""
    path = folder / 'labels.npz'
    data = bytearray(path.read_bytes())
    entry = data.index(b'PK\x01\x02')
    while True:
        name_len = int.from_bytes(data[entry + 28:entry + 30], 'little')
        if data[entry + 46:entry + 46 + name_len].decode() == member:
            break
        entry = data.index(b'PK\x01\x02', entry + 4)
    data[entry + 24:entry + 28] = file_size.to_bytes(4, 'little')
    path.write_bytes(bytes(data))


@pytest.fixture
def forbid_member_reads(monkeypatch):
    """Call it to fail the test from then on if any zip member is opened (decompressed)."""
    def refuse(*args, **kwargs):
        raise AssertionError('a zip member was opened')
    return lambda: monkeypatch.setattr(zipfile.ZipFile, 'open', refuse)


@pytest.mark.parametrize('save', [np.savez, np.savez_compressed])
@pytest.mark.parametrize('shape', [(4, 4, 2), (200, 200, 16)])
def test_numpy_written_files_pass_every_check(tmp_path, save, shape):
    folder = tmp_path / 'tok'
    folder.mkdir()
    semantics = np.random.default_rng(0).integers(0, 18, shape, dtype=np.uint8)
    save(folder / 'labels.npz', semantics=semantics, mask_lidar=np.ones(shape, np.uint8),
         mask_camera=np.zeros(shape, np.uint8))
    check_occ_gt_headers([(str(folder), 'tok')])
    check_occ_gt_headers([(str(folder), 'tok')], shape)
    gt = load_occ_gt(str(folder), 'tok', shape)
    assert np.array_equal(gt['semantics'], semantics) and gt['mask_lidar'].all()
    assert not gt['mask_camera'].any() and gt['mask_camera'].dtype == np.uint8


def test_a_duplicate_member_is_refused_before_anything_is_read(tmp_path, forbid_member_reads):
    shadow = ('semantics.npy', npy_bytes(np.full((64, 64, 64), 17, np.uint8)))
    folder = write_zip(tmp_path / 'tok1', valid_members() + [shadow])
    forbid_member_reads()
    with pytest.raises(OccGTError, match=r'tok1/labels.npz \(sample tok1\): holds the member '
                       r'semantics.npy twice .*; expected an .npz'):
        check_occ_gt_headers([(str(folder), 'tok1')], (4, 4, 2))
    with pytest.raises(OccGTError, match='semantics.npy twice'):
        check_occ_gt_headers([(str(folder), 'tok1')])
    with pytest.raises(OccGTError, match=r'\(sample tok1\): holds the member semantics.npy twice'):
        load_occ_gt(str(folder), 'tok1')


def test_an_unknown_member_is_refused(tmp_path, forbid_member_reads):
    folder = write_zip(tmp_path / 'tok2', valid_members() + [('notes.txt', b'hello')])
    forbid_member_reads()
    with pytest.raises(OccGTError, match=r"\(sample tok2\): holds a member 'notes.txt'; an Occ3D "
                       'labels.npz holds only semantics.npy, mask_lidar.npy, mask_camera.npy'):
        check_occ_gt_headers([(str(folder), 'tok2')])
    with pytest.raises(OccGTError, match="'notes.txt'"):
        load_occ_gt(str(folder), 'tok2')


def test_a_member_larger_than_its_shape_is_refused_from_the_directory(tmp_path, monkeypatch):
    """A (4, 4, 2) header followed by 4 MB that compress to a few kB: refused from the sizes in
    the zip directory while the expected shape is known, without opening the member."""
    members = valid_members()
    members[0] = ('semantics.npy', npy_bytes(np.ones((4, 4, 2), np.uint8), extra=4 << 20))
    folder = write_zip(tmp_path / 'tok3', members)
    assert (folder / 'labels.npz').stat().st_size < 64 << 10
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, 'open',
                        lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    size = 4 * 4 * 2 + (4 << 20) + 128
    with pytest.raises(OccGTError, match=rf'\(sample tok3\): member semantics.npy unpacks to '
                       rf'{size} bytes \(\d+ stored, zip directory\), more than the \d+ that a '
                       r'\(4, 4, 2\) volume'):
        check_occ_gt_headers([(str(folder), 'tok3')], (4, 4, 2))
    with pytest.raises(OccGTError, match='member semantics.npy unpacks to'):
        load_occ_gt(str(folder), 'tok3', (4, 4, 2))
    assert opened == []
    # without an expected shape the header is read (a few bytes) and must fill the member
    with pytest.raises(OccGTError, match=rf'member semantics.npy holds {size} bytes, but its '
                       r'header \(128 bytes\) declares \(4, 4, 2\) uint8: 160 bytes'):
        load_occ_gt(str(folder), 'tok3')
    # nor above the bound of any Occ3D volume
    opened.clear()
    monkeypatch.setattr(occ3d_labels, 'MAX_GT_VOXELS', 1 << 16)
    with pytest.raises(OccGTError, match=r'unpacks to \d+ bytes .* at most 65536 voxels'):
        check_occ_gt_headers([(str(folder), 'tok3')])
    assert opened == []


def test_a_directory_claiming_a_huge_member_is_refused_without_reading(tmp_path,
                                                                        forbid_member_reads):
    """The tester's case: a labels.npz whose directory claims a 1.5 GB semantics member."""
    folder = write_zip(tmp_path / 'tok4', valid_members())
    set_directory_size(folder, 'semantics.npy', 1_500_000_000)
    forbid_member_reads()
    tracemalloc.start()
    try:
        for check in (lambda: check_occ_gt_headers([(str(folder), 'tok4')]),
                      lambda: load_occ_gt(str(folder), 'tok4')):
            with pytest.raises(OccGTError, match='member semantics.npy unpacks to 1500000000 '
                               'bytes'):
                check()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_directory_understating_a_member_bounds_what_is_decompressed(tmp_path):
    """A member whose directory size is its header's but that holds 32 MB more (deflated to a
    few kB): reading stops at the directory's size and the CRC check fails."""
    members = valid_members()
    members[0] = ('semantics.npy', npy_bytes(np.ones((4, 4, 2), np.uint8), extra=32 << 20))
    folder = write_zip(tmp_path / 'tok5', members)
    set_directory_size(folder, 'semantics.npy', 128 + 32)
    tracemalloc.start()
    try:
        with pytest.raises(OccGTError, match=r'\(sample tok5\): damaged file \(BadZipFile: Bad '
                           'CRC-32'):
            load_occ_gt(str(folder), 'tok5', (4, 4, 2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_a_file_larger_than_three_volumes_is_refused_before_its_directory_is_read(
        tmp_path, monkeypatch):
    folder = tmp_path / 'tok6'
    folder.mkdir()
    ones = np.ones((64, 64, 16), np.uint8)
    np.savez(folder / 'labels.npz', semantics=ones, mask_lidar=ones, mask_camera=ones)
    monkeypatch.setattr(occ3d_labels, 'MAX_GT_VOXELS', 1 << 10)
    monkeypatch.setattr(zipfile, 'ZipFile', None)  # not even the directory is parsed
    with pytest.raises(OccGTError, match=r'\(sample tok6\): \d+ bytes on disk, more than the '
                       r'\d+ that three arrays of at most 1024 voxels take'):
        check_occ_gt_headers([(str(folder), 'tok6')])
