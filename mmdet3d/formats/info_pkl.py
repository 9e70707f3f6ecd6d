"""The BEVDet/OccFlowNet info pkls (spec 5.1): their one writer and their one reader.

File layout: ``{'infos': [info, ...], 'metadata': {'version': str}}`` written with pickle.
Info pkls are often downloaded, so they are read as plain data only
(:class:`mmdet3d.utils.safe_pickle.CheckedBuildUnpickler`): a pickle that refers to any other global
(code, classes) is refused before anything it names is imported or called.
"""
from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterable
from typing import Any

from mmdet3d.utils.file_io import atomic_write_bytes
from mmdet3d.utils.safe_pickle import CheckedBuildUnpickler, finish


def dump_infos(path: str, infos: list[dict[str, Any]], version: str) -> None:
    """Atomically write an info pkl holding ``infos`` and ``metadata.version``."""
    payload = pickle.dumps(dict(infos=infos, metadata=dict(version=version)), protocol=4)
    atomic_write_bytes(path, payload)


def load_infos(path: str, required_keys: Iterable[str] = ()) -> tuple[list[dict], dict]:
    """Load an info pkl (plain data only) and check that every info holds ``required_keys``.

    Returns:
        ``(infos, metadata)`` in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file is not a pickle of plain data (dicts, lists, tuples, strings,
            bytes, numbers, bools, None and numeric/bool/string numpy arrays) in the expected
            layout; the message names the file and, for a refused global, that global.
        KeyError: an info lacks a required key (the message names file, index, token and key).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f'info file {path} is a directory; expected a .pkl file')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'info file not found: {path}')
    try:
        with open(path, 'rb') as f:
            payload = f.read()
        data = finish(CheckedBuildUnpickler(io.BytesIO(payload)).load())
    except Exception as err:  # unpickling raises many exception types on corrupt input
        raise ValueError(f'cannot read info file {path}: {type(err).__name__}: {err}') from err
    if not isinstance(data, dict) or not isinstance(data.get('infos'), list):
        raise ValueError(
            f"info file {path} must hold a dict with an 'infos' list "
            f'(spec 5.1), got {type(data).__name__}')
    infos = data['infos']
    required = tuple(required_keys)
    for idx, info in enumerate(infos):
        if not isinstance(info, dict):
            raise ValueError(f'info file {path}: entry {idx} is {type(info).__name__}, not a dict')
        missing = [key for key in required if key not in info]
        if missing:
            raise KeyError(
                f"info file {path}: entry {idx} (token {info.get('token', '?')}) lacks "
                f'key(s) {missing}; regenerate it with tools/create_data_bevdet.py')
    return infos, data.get('metadata', {})
