"""Checkpoint files: atomic saving, and loading that can never run code from the file.

Every checkpoint the project reads (``tools/test.py``, ``--resume-from``, ``load_from``, the
visualisation and diagnostics tools, pretrained backbones) goes through
:func:`load_checkpoint_file`: ``torch.load(weights_only=True)``, whose unpickler builds only
allow-listed globals. Beyond torch's defaults the allow-list holds data types only: mmengine's
``HistoryBuffer`` (the message hub's logs in a resume checkpoint), numpy arrays, scalars and
dtypes. One callable is needed: a ``HistoryBuffer`` pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')``, so the global ``builtins.getattr`` resolves to
:func:`history_buffer_statistic`, which returns those four methods and refuses every other
attribute (the builtin ``getattr`` would let a crafted file reach ``os.system`` through
torch's own allowed rebuild functions).
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet3d.utils.file_io import atomic_open

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint file holds something other than weights and training state."""


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write never leaves a truncated ``path`` behind.
    """
    with atomic_open(path) as f:
        torch.save(obj, f)


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer.<statistic>``.

    Raises:
        CheckpointRefusedError: for any other object or attribute.
    """
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise CheckpointRefusedError(
        f'the file asks for attribute {name!r} of a {type(owner).__name__}; a checkpoint may only refer to '
        f'HistoryBuffer.{{{", ".join(HISTORY_BUFFER_STATISTICS)}}}')


def register_checkpoint_safe_globals() -> None:
    """Allow-list mmengine's checkpoint contents for ``torch.load(weights_only=True)`` and route
    mmengine's loading of local files through :func:`load_checkpoint_file`. Idempotent."""
    dtype_classes = {type(np.dtype(t)) for t in np.sctypeDict.values()}
    torch.serialization.add_safe_globals([
        HistoryBuffer, (history_buffer_statistic, 'builtins.getattr'),
        np.core.multiarray._reconstruct, np.core.multiarray.scalar, np.ndarray, np.dtype,
        *sorted(dtype_classes, key=lambda c: c.__name__)
    ])
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_weights_only, force=True)


def load_checkpoint_file(filename: str, map_location: Any = None, mmap: bool = False) -> Any:
    """``torch.load`` of a local checkpoint with the weights-only unpickler (``mmap``: map the
    tensors' storage lazily, for a zip-format file, as ``torch.load`` does).

    Raises:
        FileNotFoundError: naming ``filename`` when it does not exist.
        CheckpointRefusedError: naming ``filename`` when it refers to anything but tensors,
            containers, numbers, strings, numpy data and ``HistoryBuffer`` state (e.g. code).
    """
    register_checkpoint_safe_globals()
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise CheckpointRefusedError(
            f'refused to load checkpoint {filename}: it holds objects other than weights and '
            f'training state, which could run code. Only load files you trust; the '
            f'unpickler said: {_unpickler_reason(error)}') from error


def load_from_weights_only(filename: str, map_location: Any = None) -> Any:
    """mmengine's loader of local paths (its log reads "Loads checkpoint by weights_only
    backend"): :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location)


def _unpickler_reason(error: Exception) -> str:
    """The specific part of torch's weights-only error message (without its advice to load
    with ``weights_only=False``)."""
    boilerplate = ('Weights only load failed', 'Please file an issue', 'Check the documentation')
    lines = [line.strip() for line in str(error).splitlines()]
    return ' '.join(line for line in lines if line and not line.startswith(boilerplate))

