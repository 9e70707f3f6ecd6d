"""Checkpoint files: atomic saving, and loading that can never run code, crash the process,
change its state or allocate much more than the file's size.

Every checkpoint the project reads (``tools/test.py``, ``--resume-from``, ``load_from``, the
visualisation and diagnostics tools, pretrained backbones) goes through
:func:`load_checkpoint_file`:

1. The file must be a zip-format torch checkpoint (torch >= 1.6) whose records are all stored
   uncompressed under one folder, with a ``data.pkl`` and no TorchScript code, no duplicate or
   path-like names, and records that fit in the file: so the tensors' bytes can never exceed
   the file's size.
2. ``torch.load`` reads ``data.pkl`` with :class:`CheckpointUnpickler`: the pure-Python
   unpickler restricted to :data:`CHECKPOINT_BUILDERS` (torch's tensor and parameter rebuilds
   with sizes, strides and offsets checked against their storage, ``OrderedDict``,
   ``torch.Size``, mmengine's ``HistoryBuffer`` built fresh from validated state, numpy data
   as in :mod:`mmdet3d.utils.safe_pickle`), BUILD only on those placeholders and on a state
   dict's ``_metadata``, and storage references checked against the zip's records.
3. The weights under ``state_dict`` must be finite (:func:`check_finite_weights`).

Any refusal is a :class:`CheckpointRefusedError` naming the file and the reason. torch's own
``weights_only`` allow-list is not used: it admits objects from ``torch.distributed``, large
``bytearray`` allocations and numpy dtype states that crash the process.
"""
from __future__ import annotations

import math
import os
import pickle
import re
import types
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet3d.utils.file_io import atomic_open
from mmdet3d.utils.safe_pickle import (MAX_NDIM, PLAIN_DATA_BUILDERS, CheckedBuildUnpickler,
                                       Placeholder, UnsafePickleError, brief, finish)

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
#: longest history a ``HistoryBuffer`` in a checkpoint may hold (mmengine's default maximum)
MAX_HISTORY = 1_000_000
_RECORD_NAME = re.compile(r'[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*')


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint file holds something other than weights and training state, or is
    damaged; the message names the file and the reason."""


class NonFiniteWeightsError(ValueError):
    """A checkpoint's weights hold NaN or infinity."""


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write never leaves a truncated ``path`` behind.
    """
    with atomic_open(path) as f:
        torch.save(obj, f)


class HistoryBufferState(Placeholder):
    """mmengine's ``HistoryBuffer`` as pickled (NEWOBJ + BUILD of its ``__dict__``), rebuilt
    through its constructor from validated arrays."""
    __slots__ = ('state', )

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def make(self) -> HistoryBuffer:
        state = finish(getattr(self, 'state', None))
        if not isinstance(state, dict):
            raise UnsafePickleError('a HistoryBuffer without its state')
        unknown = set(state) - {'max_length', '_log_history', '_count_history',
                                'statistics_methods', '_statistics_methods'}
        max_length = state.get('max_length', MAX_HISTORY)
        log, count = state.get('_log_history'), state.get('_count_history')
        arrays_ok = all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in 'biuf'
                        for a in (log, count))
        if unknown or type(max_length) is not int or not 0 < max_length <= MAX_HISTORY \
                or not arrays_ok or len(log) != len(count) or len(log) > max_length:
            raise UnsafePickleError(
                f'a HistoryBuffer with invalid state (keys {sorted(state)}; expected 1-D numeric '
                f'_log_history and _count_history of one length <= max_length <= {MAX_HISTORY})')
        return HistoryBuffer(log, count, max_length)


def history_buffer_statistic(owner: Any, name: str) -> str:
    """Stand-in for ``builtins.getattr``: a ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; the rebuilt buffer has its own, so a marker suffices.

    Raises:
        UnsafePickleError: for any other object or attribute.
    """
    if owner is HistoryBufferState and name in HISTORY_BUFFER_STATISTICS:
        return f'HistoryBuffer.{name}'
    raise UnsafePickleError(
        f'the file asks for attribute {brief(name)} of a {type(owner).__name__}; a checkpoint may '
        f'only refer to HistoryBuffer.{{{", ".join(HISTORY_BUFFER_STATISTICS)}}}')


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if type(values) not in (tuple, torch.Size) or len(values) > MAX_NDIM or not all(
            type(v) is int and v >= 0 for v in values):
        raise UnsafePickleError(f'tensor {what} {brief(values)} is not a tuple of non-negative '
                                f'ints')
    return tuple(values)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and not value)


def _no_hooks(hooks: Any) -> None:
    if not isinstance(hooks, dict) or hooks:
        raise UnsafePickleError('a tensor with backward hooks')


def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                   hooks: Any, metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` once the view is checked to lie inside its storage
    and to hold no more elements than the storage (no broadcast views)."""
    size, stride = _ints(size, 'size'), _ints(stride, 'stride')
    if not isinstance(storage, torch.storage.TypedStorage) or type(offset) is not int \
            or offset < 0 or len(size) != len(stride) or type(requires_grad) is not bool:
        raise UnsafePickleError('a tensor with an invalid storage, offset or strides')
    _no_hooks(hooks)
    if not _empty(metadata):
        raise UnsafePickleError('a tensor with metadata (only plain dense tensors are loaded)')
    numel = math.prod(size)
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else 0
    if extent > storage._size() or numel > storage._size():
        raise UnsafePickleError(
            f'a tensor of size {size} (strides {stride}, offset {offset}) does not fit its '
            f'storage of {storage._size()} elements')
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
                                           OrderedDict())


def rebuild_parameter(data: Any, requires_grad: Any, hooks: Any,
                      state: Any = None) -> torch.nn.Parameter:
    """``torch._utils._rebuild_parameter(_with_state)`` without hooks or extra state."""
    if not isinstance(data, torch.Tensor) or type(requires_grad) is not bool \
            or not _empty(state):
        raise UnsafePickleError('a parameter with invalid data or extra state')
    _no_hooks(hooks)
    return torch.nn.Parameter(data, requires_grad)


def counter(counts: Any = None) -> Counter:
    """``collections.Counter(dict)`` (a scheduler's milestones)."""
    if not (counts is None or type(counts) is dict):
        raise UnsafePickleError('a Counter of anything but a dict')
    return Counter(counts or {})


#: what a checkpoint's ``data.pkl`` may refer to: plain data, tensors, parameters, state dicts
#: (``OrderedDict`` with ``_metadata``), scheduler milestones (``Counter``) and mmengine's
#: message hub (``HistoryBuffer``)
CHECKPOINT_BUILDERS: dict[tuple[str, str], Callable] = {
    **PLAIN_DATA_BUILDERS,
    ('collections', 'OrderedDict'): OrderedDict,
    ('collections', 'Counter'): counter,
    ('torch._utils', '_rebuild_tensor_v2'): rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): rebuild_parameter,
    ('torch', 'Size'): lambda values=(): torch.Size(_ints(values, 'size')),
    ('mmengine.logging.history_buffer', 'HistoryBuffer'): HistoryBufferState,
    ('builtins', 'getattr'): history_buffer_statistic,
}


def check_torch_zip(filename: str) -> dict[str, int]:
    """Check the zip layout of a torch checkpoint without reading its records.

    Returns:
        The byte size of every storage record, by key (``<folder>/data/<key>``).

    Raises:
        UnsafePickleError: not a zip-format checkpoint, compressed or oversized records,
            duplicate or path-like names, several folders, TorchScript code, no ``data.pkl``.
    """
    if not zipfile.is_zipfile(filename):
        raise UnsafePickleError('it is not a zip-format torch checkpoint (torch >= 1.6 writes '
                                'one); legacy formats are not read')
    with zipfile.ZipFile(filename) as archive:
        entries = archive.infolist()
    names = [e.filename for e in entries]
    folders = {name.split('/', 1)[0] for name in names}
    problem = (
        'it has no records' if not entries else
        'it holds duplicate record names' if len(set(names)) != len(names) else
        'a record name is not a plain relative path' if not all(
            _RECORD_NAME.fullmatch(n) and '..' not in n.split('/') for n in names) else
        'its records are not under one folder' if len(folders) != 1 else
        'it holds compressed records' if any(
            e.compress_type != zipfile.ZIP_STORED for e in entries) else
        'its records are larger than the file' if sum(
            e.file_size for e in entries) > os.path.getsize(filename) else
        'it holds TorchScript code (load it with torch.jit.load if you trust it)' if any(
            n.split('/')[1:2] in (['constants.pkl'], ['code']) for n in names) else
        'it has no data.pkl' if f'{next(iter(folders))}/data.pkl' not in names else None)
    if problem:
        raise UnsafePickleError(problem)
    data_dir = f'{next(iter(folders))}/data/'
    return {e.filename[len(data_dir):]: e.file_size for e in entries
            if e.filename.startswith(data_dir)}


def _checkpoint_pickle_module(record_sizes: Mapping[str, int]) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is :class:`CheckpointUnpickler`
    with storage references checked against ``record_sizes``."""

    class CheckpointUnpickler(CheckedBuildUnpickler):
        builders = CHECKPOINT_BUILDERS

        @property
        def persistent_load(self) -> Callable:
            return self._checked_persistent_load

        @persistent_load.setter
        def persistent_load(self, torch_persistent_load: Callable) -> None:
            self._torch_persistent_load = torch_persistent_load

        def _checked_persistent_load(self, pid: Any) -> Any:
            valid = (type(pid) is tuple and len(pid) == 5 and pid[0] == 'storage'
                     and isinstance(pid[1], torch.serialization.StorageType)
                     and type(pid[2]) is str and type(pid[3]) is str
                     and type(pid[4]) is int and pid[4] >= 0)
            if not valid:
                raise UnsafePickleError(f'an invalid storage reference {brief(pid)}')
            _, storage_type, key, _, numel = pid
            nbytes = numel * torch._utils._element_size(storage_type.dtype)
            if nbytes > record_sizes.get(key, -1):
                raise UnsafePickleError(
                    f'storage {brief(key)} of {nbytes} bytes has no record of that size in the '
                    f'file')
            return self._torch_persistent_load(pid)

    module = types.ModuleType('mmdet3d_checkpoint_pickle')
    module.Unpickler = CheckpointUnpickler
    module.UnpicklingError = pickle.UnpicklingError
    return module


def check_finite_weights(checkpoint: Any, filename: str) -> None:
    """Refuse NaN/inf in the floating-point weights of ``checkpoint['state_dict']`` (or of a
    bare state dict).

    Raises:
        NonFiniteWeightsError: naming the file, the first bad key and how many values.
    """
    weights = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else {}
    for key, value in weights.items() if isinstance(weights, Mapping) else ():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise NonFiniteWeightsError(
                    f'checkpoint {filename}: weight {key!r} holds {bad} NaN/inf value(s) of '
                    f'{value.numel()}; the run that wrote it diverged. Pass '
                    f'--allow-nonfinite-weights to load it anyway')


#: set by ``--allow-nonfinite-weights`` (:func:`allow_nonfinite_weights`)
_NONFINITE_ALLOWED = False


def allow_nonfinite_weights(allowed: bool = True) -> None:
    """Let mmengine's checkpoint loading (the tools) accept NaN/inf weights."""
    global _NONFINITE_ALLOWED
    _NONFINITE_ALLOWED = allowed


def route_mmengine_checkpoint_loading() -> None:
    """Route mmengine's loading of local files (``load_from``, resume, ``load_checkpoint``)
    through :func:`load_checkpoint_file`. Idempotent."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_mmengine, force=True)


def load_checkpoint_file(filename: str, map_location: Any = None, mmap: bool = False,
                         allow_nonfinite: bool = False) -> Any:
    """Load a local checkpoint as weights and training state only (see the module docstring);
    ``mmap`` maps the tensors' storage lazily, as ``torch.load`` does.

    Raises:
        FileNotFoundError / IsADirectoryError: naming ``filename``.
        CheckpointRefusedError: naming ``filename`` and the reason, for anything but tensors,
            containers, numbers, strings, numpy data and ``HistoryBuffer`` state, and for a
            damaged or oversized file.
        NonFiniteWeightsError: NaN/inf weights, unless ``allow_nonfinite``.
    """
    filename = os.path.expanduser(filename)
    if os.path.isdir(filename):
        raise IsADirectoryError(f'checkpoint {filename} is a directory; expected a .pth file')
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    try:
        module = _checkpoint_pickle_module(check_torch_zip(filename))
        checkpoint = finish(torch.load(filename, map_location=map_location, weights_only=False,
                                       pickle_module=module, mmap=mmap),
                            leaf_types=(torch.Tensor, torch.Size, HistoryBuffer))
    except MemoryError:
        raise
    except Exception as error:  # damaged files raise many types; all are named refusals
        reason = f'{type(error).__name__}: {error}' if not isinstance(
            error, UnsafePickleError) else str(error)
        raise CheckpointRefusedError(
            f'refused to load checkpoint {filename}: {reason}. It is damaged or holds objects '
            f'other than weights and training state; only weights and training state are '
            f'loaded') from error
    if not allow_nonfinite:
        check_finite_weights(checkpoint, filename)
    return checkpoint


def load_from_mmengine(filename: str, map_location: Any = None) -> Any:
    """mmengine's loader of local paths (its log reads "Loads checkpoint by ... backend"):
    :func:`load_checkpoint_file`, NaN/inf weights refused unless
    :func:`allow_nonfinite_weights`."""
    return load_checkpoint_file(filename, map_location, allow_nonfinite=_NONFINITE_ALLOWED)
