"""Info pkls are read as plain data only (issue 29, row 1): a pickle that names code is refused
before it runs, BEVDet-style infos of every pickle protocol still load, bad files are named."""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from mmdet3d.formats.info_pkl import dump_infos, load_infos
from mmdet3d.testing.crafted_pickles import Call


def bevdet_info(index: int) -> dict:
    """One info of the original's layout (BEVDet's create_data + OccFlowNet's occ_path)."""
    cams = {cam: dict(data_path=f'./data/nuscenes/samples/{cam}/{index}.jpg', type=cam,
                      sample_data_token=f'sd{index}{cam}', timestamp=1533151603512404 + index,
                      sensor2ego_translation=[1.7, 0.0, 1.5],
                      sensor2ego_rotation=[0.5, -0.5, 0.5, -0.5],
                      cam_intrinsic=np.eye(3) * 1266.4)
            for cam in ('CAM_FRONT', 'CAM_BACK')}
    return dict(token=f'tok{index}', scene_token='scene', lidar_path=f'./lidar/{index}.bin',
                sweeps=[], cams=cams, timestamp=1533151603547590 + index,
                ego2global_rotation=[0.57, -0.0, 0.0, 0.82],
                ego2global_translation=[600., 1640., 0.],
                gt_boxes=np.arange(18, dtype=np.float32).reshape(2, 9),
                gt_names=np.array(['car', 'pedestrian']), gt_velocity=np.zeros((2, 2)),
                num_lidar_pts=np.array([12, 3]), valid_flag=np.array([True, False]),
                ann_infos=([[1.0] * 9], [0]), occ_path=f'./data/gts/scene/tok{index}',
                scalar=np.float64(0.5), count=np.int64(7), order=OrderedDict(a=1), ids={1, 2})


def assert_same(loaded, original) -> None:
    if isinstance(original, np.ndarray):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        np.testing.assert_array_equal(loaded, original)
    elif isinstance(original, dict):
        assert type(loaded) is dict and loaded.keys() == original.keys()
        for key in original:
            assert_same(loaded[key], original[key])
    elif isinstance(original, (list, tuple)):
        assert type(loaded) is type(original) and len(loaded) == len(original)
        for a, b in zip(loaded, original):
            assert_same(a, b)
    else:
        assert loaded == original and type(loaded) is type(original)


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_bevdet_infos_load_in_every_protocol(tmp_path, protocol):
    infos = [bevdet_info(i) for i in range(3)]
    path = tmp_path / 'infos.pkl'
    path.write_bytes(pickle.dumps(dict(infos=infos, metadata=dict(version='v1.0-mini')),
                                  protocol=protocol))
    loaded, metadata = load_infos(str(path), required_keys=('token', 'occ_path'))
    assert metadata == dict(version='v1.0-mini')
    assert_same(loaded, infos)


def test_written_infos_round_trip(tmp_path):
    infos = [bevdet_info(0)]
    dump_infos(str(tmp_path / 'x.pkl'), infos, 'v1.0-trainval')
    assert_same(load_infos(str(tmp_path / 'x.pkl'))[0], infos)


def test_a_pickle_that_runs_a_command_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(dict(infos=[Call(os.system, f'touch {marker}')])))
    with pytest.raises(ValueError, match=rf'{path}: .* refers to the global posix.system'):
        load_infos(str(path))
    assert not marker.exists()
    # the control: plain pickle runs it
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize('payload, expected', [
    (np.array([None], dtype=object), "numpy dtype 'O8'"),
    (np.zeros(2, dtype=[('a', 'f4')]), "numpy dtype 'V4'"),
    (np.array(['2020-01-01'], dtype='M8[D]'), "numpy dtype 'M8'"),
    (Call(bytearray, 10**9), 'latin1 text only'),
    (Call(np.dtype, 'f8', False, True,
          state=(3, '<', None, ('a', ), {'a': (np.dtype('f8'), 10**9)}, 8, 1, 16)),
     'sub-arrays and fields'),
    (Call(np.core.multiarray._reconstruct, np.ndarray, (0, ), b'b',
          state=(1, (10**9, ), np.dtype('f8'), False, b'')), 'needs 8000000000 bytes'),
    (Call(np.core.multiarray._reconstruct, list, (0, ), b'b'), 'builtins.list'),
])
def test_non_plain_data_is_refused_naming_the_file(tmp_path, payload, expected):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(pickle.dumps(dict(infos=[dict(x=payload)]), protocol=2))
    with pytest.raises(ValueError, match=f'cannot read info file {path}') as info:
        load_infos(str(path))
    assert expected in str(info.value)


def test_build_on_a_builder_or_placeholder_class_is_refused(tmp_path):
    # GLOBAL numpy dtype; EMPTY_DICT; BUILD (state on the global itself)
    path = tmp_path / 'build.pkl'
    path.write_bytes(b'\x80\x02cnumpy\ndtype\n}b.')
    with pytest.raises(ValueError, match=str(path)):
        load_infos(str(path))


def test_deep_nesting_truncation_and_directories_are_named(tmp_path):
    deep: list = []
    for _ in range(200):
        deep = [deep]
    path = tmp_path / 'deep.pkl'
    path.write_bytes(pickle.dumps(dict(infos=deep)))
    with pytest.raises(ValueError, match='nested deeper than 64 levels'):
        load_infos(str(path))
    dump_infos(str(path), [bevdet_info(0)], 'v')
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=f'cannot read info file {path}'):
        load_infos(str(path))
    with pytest.raises(IsADirectoryError, match=f'info file {tmp_path} is a directory'):
        load_infos(str(tmp_path))


def test_a_declared_length_is_not_allocated_before_it_is_read(tmp_path):
    """BYTEARRAY8 claiming 1 TB in a 20-byte file: refused from what the file holds (the stock
    unpicklers allocate the declared length first)."""
    path = tmp_path / 'claim.pkl'
    path.write_bytes(b'\x80\x05\x96' + (10**12).to_bytes(8, 'little') + b'abc.')
    with pytest.raises(ValueError, match='a bytearray of 1000000000000 bytes, the file holds 4'):
        load_infos(str(path))
