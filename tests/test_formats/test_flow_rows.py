"""The flow-row file (``mmdet3d.formats.flow_rows``): written and read back, wrong files named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmdet3d.formats.flow_rows import (FlowGT, flow_file, flow_path, load_flow, load_flow_rows,
                                       save_flow)


def _gt(rows: int = 5, motions: int = 2) -> FlowGT:
    rng = np.random.default_rng(0)
    flow = rng.integers(0, 200, size=(rows, 11)).astype(np.uint8)
    flow[:, 10] = rng.integers(0, 6, size=rows)
    transforms = np.tile(np.eye(4, dtype=np.float32), (motions, 1, 1))
    transforms[:, :3, 3] = rng.normal(size=(motions, 3))
    return FlowGT(flow, transforms, (np.arange(rows) % motions).astype(np.uint16))


def test_paths():
    info = dict(scene_name='scene-0001', token='tok')
    assert flow_path('data/flow', info) == flow_file('data/flow', 'scene-0001', 'tok') \
        == str(Path('data/flow/scene-0001/tok.npz'))


@pytest.mark.parametrize('gt', [_gt(), FlowGT.empty()], ids=['rows', 'empty'])
def test_save_and_load_round_trip(tmp_path, gt):
    path = flow_path(str(tmp_path), dict(scene_name='scene-0001', token='tok'))
    save_flow(path, gt)  # creates the scene folder
    back = load_flow(path)
    for name in ('flow', 'transforms', 'indices'):
        np.testing.assert_array_equal(getattr(back, name), getattr(gt, name))
        assert getattr(back, name).dtype == getattr(gt, name).dtype
    rows = load_flow_rows(path)
    assert rows.dtype == np.uint8 and rows.shape == (len(gt.flow), 11)
    assert list(tmp_path.glob('scene-0001/*')) == [Path(path)]  # no temporary file left


def _write(path: Path, **arrays) -> str:
    np.savez_compressed(path, **arrays)
    return str(path)


def test_wrong_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='flow ground truth not found: .*none.npz'):
        load_flow_rows(str(tmp_path / 'none.npz'))
    good = _gt()
    path = _write(tmp_path / 'no_flow.npz', T=good.transforms)
    with pytest.raises(KeyError, match='no_flow.npz lacks the array "flow"'):
        load_flow_rows(path)
    path = _write(tmp_path / 'wide.npz', flow=np.zeros((3, 12), np.uint8))
    with pytest.raises(ValueError, match=r'wide.npz: "flow" must be \(n, 11\)'):
        load_flow_rows(path)
    path = _write(tmp_path / 'float.npz', flow=np.zeros((3, 11), np.float32))
    with pytest.raises(ValueError, match='float.npz: "flow" must hold integers'):
        load_flow_rows(path)
    path = _write(tmp_path / 'range.npz', flow=np.full((3, 11), 300, np.int64))
    with pytest.raises(ValueError, match='range.npz: "flow" holds values 300..300'):
        load_flow_rows(path)
    path = _write(tmp_path / 'rows_only.npz', flow=good.flow)
    assert load_flow_rows(path).shape == (5, 11)
    with pytest.raises(KeyError, match='lacks the array "T"'):
        load_flow(path)
    path = _write(tmp_path / 'short.npz', flow=good.flow, T=good.transforms,
                  indices=good.indices[:-1])
    with pytest.raises(ValueError, match='one integer per flow row'):
        load_flow(path)
    path = _write(tmp_path / 'beyond.npz', flow=good.flow, T=good.transforms[:1],
                  indices=good.indices)
    with pytest.raises(ValueError, match='outside the 1 transforms'):
        load_flow(path)
    path = _write(tmp_path / 'bad_t.npz', flow=good.flow, T=np.zeros((2, 3, 4)),
                  indices=good.indices)
    with pytest.raises(ValueError, match=r'"T" must be \(m, 4, 4\)'):
        load_flow(path)
