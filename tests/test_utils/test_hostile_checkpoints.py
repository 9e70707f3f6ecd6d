"""Checkpoints from elsewhere cannot crash the process, change its state or allocate beyond
their size (issue 29, rows 2-9); every refusal is a ``CheckpointRefusedError`` naming the file.

The crafted files use only globals an mmengine checkpoint needs (numpy dtypes and scalars,
``HistoryBuffer``, torch's tensor rebuild) or globals torch's own ``weights_only`` allow-list
admits (``torch.distributed``, ``bytearray``, ``complex``, ``torch.device``), with values that
the old loader passed on to numpy/torch unchecked.
"""
from __future__ import annotations

import codecs
from contextlib import nullcontext
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmdet3d.testing.crafted_pickles import (Call, pickle_with_storages, tensor_from,
                                             write_torch_zip)
from mmdet3d.utils.checkpoint_io import (CheckpointRefusedError, NonFiniteWeightsError,
                                         allow_nonfinite_weights, atomic_torch_save,
                                         load_checkpoint_file, load_from_mmengine)

FLOATS = struct.pack('<4f', 1, 2, 3, 4)


def refused(path: Path, match: str) -> CheckpointRefusedError:
    with pytest.raises(CheckpointRefusedError, match=f'refused to load checkpoint {path}') as info:
        load_checkpoint_file(str(path))
    message = str(info.value)
    assert match in message and 'weights_only=False' not in message, message
    return info.value


def crafted(tmp_path: Path, obj, name: str = 'crafted.pth', **zip_options) -> Path:
    path = tmp_path / name
    write_torch_zip(str(path), pickle_with_storages(obj), **zip_options)
    return path


# ---- row 2: numpy dtypes and scalars ---------------------------------------------------------
@pytest.mark.parametrize('array', [np.zeros(2, dtype=[('x', 'f4')]), np.zeros(2, dtype='V8'),
                                   np.array([None, 1], dtype=object)])
def test_structured_void_and_object_arrays_are_refused(tmp_path, array):
    path = tmp_path / 'x.pth'
    torch.save(dict(meta=dict(a=array)), path)
    refused(path, 'is not a numeric, bool or fixed-width string dtype')


def test_dtype_state_with_fields_is_refused_before_numpy_sees_it(tmp_path):
    """A float dtype whose BUILD state declares a field a GB long: numpy's ``__setstate__``
    would accept it and read memory behind any array of it."""
    state = (3, '<', None, ('a', ), {'a': (np.dtype('f8'), 10**9)}, 8, 1, 16)
    path = crafted(tmp_path, dict(meta=Call(np.dtype, 'f8', False, True, state=state)))
    refused(path, 'sub-arrays and fields are not allowed')


def test_scalar_with_wrong_size_or_void_dtype_is_refused(tmp_path):
    short = crafted(tmp_path, Call(np.core.multiarray.scalar, np.dtype('f8'), b'\x01'), 'a.pth')
    refused(short, 'needs 8 bytes of data')
    void = crafted(tmp_path, Call(np.core.multiarray.scalar, np.dtype('V8'), b'12345678'),
                   'b.pth')
    refused(void, "numpy dtype 'V8'")


def test_array_whose_bytes_do_not_match_its_shape_is_refused(tmp_path):
    state = (1, (10**6, ), np.dtype('f8'), False, b'\x00' * 8)
    obj = Call(np.core.multiarray._reconstruct, np.ndarray, (0, ), b'b', state=state)
    refused(crafted(tmp_path, obj), 'needs 8000000 bytes, the file holds 8')


# ---- row 3: BUILD on classes and objects that are not placeholders ---------------------------
def test_build_on_the_history_buffer_class_is_refused_and_changes_nothing(tmp_path):
    before = dict(vars(HistoryBuffer))
    # GLOBAL HistoryBuffer; {'update': None}; BUILD: would replace the class's update method
    data_pkl = (b'\x80\x02cmmengine.logging.history_buffer\nHistoryBuffer\n}X\x06\x00\x00\x00'
                b'updateNsb.')
    path = tmp_path / 'build.pth'
    write_torch_zip(str(path), data_pkl)
    refused(path, 'sets state')
    assert dict(vars(HistoryBuffer)) == before


def test_build_on_a_tensor_is_refused(tmp_path):
    """``Tensor.__setstate__`` would set storage, sizes, strides and backward hooks."""
    tensor = tensor_from('0', 4, (4, ), (1, ))
    tensor.state = (True, None, OrderedDict())  # requires_grad, _, backward hooks
    path = crafted(tmp_path, tensor, records={'0': FLOATS})
    refused(path, 'sets state on a Tensor')


# ---- row 4 is the random states: tests/test_engine/test_random_state_hook.py -------------------
# ---- row 5: globals torch's default allow-list admits ----------------------------------------
@pytest.mark.parametrize('fn, args, global_name', [
    (torch.distributed.device_mesh.DeviceMesh, ('cpu', [0]), 'DeviceMesh'),
    (complex, ('1+2j', ), 'builtins.complex'),
    (torch.device, ('cpu', ), 'torch.device'),
])
def test_globals_beyond_checkpoint_contents_are_refused(tmp_path, fn, args, global_name):
    path = crafted(tmp_path, dict(meta=Call(fn, *args)))
    refused(path, global_name)
    assert not torch.distributed.is_initialized()


# ---- row 6: allocation beyond the file's size ------------------------------------------------
def test_large_bytearray_is_refused(tmp_path):
    path = crafted(tmp_path, dict(meta=Call(bytearray, 1_500_000_000)))
    assert path.stat().st_size < 2000
    refused(path, 'latin1 text only')


def test_compressed_records_are_refused_before_decompression(tmp_path):
    path = crafted(tmp_path, dict(w=tensor_from('0', 4, (4, ), (1, ))),
                   records={'0': FLOATS}, compress=True)
    refused(path, 'compressed records')


def test_storage_larger_than_its_record_is_refused(tmp_path):
    path = crafted(tmp_path, dict(w=tensor_from('0', 10**9, (4, ), (1, ))),
                   records={'0': FLOATS})
    refused(path, "storage '0' of 4000000000 bytes has no record of that size")


@pytest.mark.parametrize('size, stride, offset', [((5, ), (1, ), 0), ((4, ), (1, ), 1),
                                                  ((2, 2), (3, 1), 0), ((8, ), (0, ), 0)])
def test_tensor_views_outside_or_broadcast_over_their_storage_are_refused(
        tmp_path, size, stride, offset):
    path = crafted(tmp_path, dict(w=tensor_from('0', 4, size, stride, offset)),
                   records={'0': FLOATS})
    refused(path, 'does not fit its storage of 4 elements')


# ---- row 7: bad values for allowed constructors, bad references ------------------------------
def test_bad_values_and_references_are_named_refusals(tmp_path):
    refused(crafted(tmp_path, Call(codecs.encode, 'x', 'rot13'), 'a.pth'), 'latin1 text only')
    refused(crafted(tmp_path, dict(w=tensor_from('../0', 4, (4, ), (1, ))), 'b.pth',
                    records={'0': FLOATS}), "storage '../0'")
    bad_pid = b'\x80\x02X\x03\x00\x00\x00abcQ.'  # BINPERSID of a string
    path = tmp_path / 'c.pth'
    write_torch_zip(str(path), bad_pid)
    refused(path, 'invalid storage reference')


@pytest.mark.parametrize('case', ['duplicate', 'dotdot', 'two_folders', 'no_data_pkl',
                                  'torchscript', 'legacy', 'oversized'])
def test_zip_layout_is_checked_before_any_record_is_read(tmp_path, case):
    path = tmp_path / f'{case}.pth'
    data_pkl = pickle_with_storages(dict(a=1))
    expected = {'duplicate': 'duplicate record names', 'dotdot': 'not a plain relative path',
                'two_folders': 'not under one folder', 'no_data_pkl': 'no data.pkl',
                'torchscript': 'TorchScript code', 'legacy': 'not a zip-format',
                'oversized': 'larger than the file'}[case]
    if case == 'legacy':
        torch.save(dict(a=1), path, _use_new_zipfile_serialization=False)
    elif case == 'no_data_pkl':
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('archive/version', '3\n')
    elif case == 'oversized':  # the central directory says a stored record holds 1 GB
        write_torch_zip(str(path), data_pkl, records={'0': FLOATS})
        raw = bytearray(path.read_bytes())
        entry = raw.find(b'PK\x01\x02')  # central directory entries
        while raw[entry + 46:entry + 60] != b'archive/data/0':
            entry = raw.find(b'PK\x01\x02', entry + 4)
        raw[entry + 24:entry + 28] = struct.pack('<I', 10**9)  # its uncompressed size
        path.write_bytes(bytes(raw))
    else:
        extra = {'duplicate': {'archive/data.pkl': data_pkl}, 'dotdot': {'archive/../x': b''},
                 'two_folders': {'other/x': b''},
                 'torchscript': {'archive/constants.pkl': pickle.dumps(())}}[case]
        with pytest.warns(UserWarning) if case == 'duplicate' else nullcontext():
            write_torch_zip(str(path), data_pkl, extra=extra)
    refused(path, expected)


# ---- row 8: NaN/inf weights -------------------------------------------------------------------
def test_nonfinite_weights_name_the_first_bad_key_unless_allowed(tmp_path):
    path = tmp_path / 'nan.pth'
    atomic_torch_save(dict(state_dict=OrderedDict(ok=torch.ones(2), bad=torch.tensor(
        [1.0, float('nan'), float('inf')]))), str(path))
    with pytest.raises(NonFiniteWeightsError, match=rf"{path}: weight 'bad' holds 2 NaN/inf"):
        load_checkpoint_file(str(path))
    assert load_checkpoint_file(str(path), allow_nonfinite=True)['state_dict']['ok'].sum() == 2
    with pytest.raises(NonFiniteWeightsError, match='--allow-nonfinite-weights'):
        load_from_mmengine(str(path))
    allow_nonfinite_weights(True)
    try:
        assert torch.isnan(load_from_mmengine(str(path))['state_dict']['bad'][1])
    finally:
        allow_nonfinite_weights(False)


# ---- row 9 -------------------------------------------------------------------------------------
def test_a_directory_says_it_is_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match=f'checkpoint {tmp_path} is a directory'):
        load_checkpoint_file(str(tmp_path))


# ---- what must still load ----------------------------------------------------------------------
def test_state_dicts_parameters_and_views_load_as_saved(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    base = torch.arange(12.)
    saved = dict(state_dict=module.state_dict(), param=torch.nn.Parameter(torch.ones(2)),
                 view=base[2:8].view(2, 3)[:, 1], base=base, size=torch.Size([2, 3]),
                 counts=np.arange(4, dtype='>i2'), names=np.array(['car', 'bus']),
                 mask=np.asfortranarray(np.eye(3, dtype=bool)), empty=np.zeros((0, 3)))
    path = tmp_path / 'ok.pth'
    atomic_torch_save(saved, str(path))
    for mmap in (False, True):
        loaded = load_checkpoint_file(str(path), map_location='cpu', mmap=mmap)
        assert loaded['state_dict']._metadata == module.state_dict()._metadata
        torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).load_state_dict(
            loaded['state_dict'])
        assert isinstance(loaded['param'], torch.nn.Parameter)
        assert loaded['view'].tolist() == [3.0, 6.0] and loaded['size'] == torch.Size([2, 3])
        for key in ('counts', 'names', 'mask', 'empty'):
            assert loaded[key].dtype == saved[key].dtype
            np.testing.assert_array_equal(loaded[key], saved[key])
        assert loaded['mask'].flags['F_CONTIGUOUS']


def test_the_loader_leaves_torch_allow_list_untouched(tmp_path):
    """The old loader widened torch's global ``weights_only`` allow-list with every numpy
    dtype class; other ``torch.load`` calls of the process then accepted them too."""
    path = tmp_path / 'x.pth'
    atomic_torch_save(dict(a=np.arange(3)), str(path))
    load_checkpoint_file(str(path))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert os.path.exists(path)


def test_test_tool_refuses_nonfinite_weights(tmp_path):
    """``tools/test.py`` used to print mIoU 0.00 and exit 0 for a diverged checkpoint."""
    import argparse

    from mmdet3d.engine.runner_setup import apply_test_args, load_config, run_test
    from mmdet3d.testing import toy_occ

    config = str(Path(__file__).resolve().parents[1] / 'fixtures' / 'configs' / 'toy_occ_2e.py')
    state = toy_occ.ToyOccModel().state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float('nan'))
    path = tmp_path / 'diverged.pth'
    atomic_torch_save(dict(state_dict=state), str(path))
    args = argparse.Namespace(config=config, checkpoint=str(path), eval='mIoU', out=None,
                              work_dir=str(tmp_path / 'w'), launcher='none')
    cfg = apply_test_args(load_config(config), args)
    cfg.experiment_name = 'nonfinite_test'
    with pytest.raises(NonFiniteWeightsError, match=f"{path}: weight '{name}'"):
        run_test(cfg)
