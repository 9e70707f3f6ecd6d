"""Hand-made hostile pickles and torch checkpoint archives, for the loaders' tests."""
from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from typing import Any

import torch


class Call:
    """Pickles as ``fn(*args)`` (a REDUCE of the global ``fn``), then ``BUILD state`` if given."""

    def __init__(self, fn: Any, *args: Any, state: Any = None) -> None:
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


class StorageRef:
    """Pickles as torch's persistent storage reference ``('storage', type, key, location,
    numel)``, with any key and element count."""

    def __init__(self, key: str, numel: int, storage_type: Any = torch.FloatStorage) -> None:
        self.key, self.numel, self.storage_type = key, numel, storage_type


class _StoragePickler(pickle.Pickler):

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, StorageRef):
            return ('storage', obj.storage_type, obj.key, 'cpu', obj.numel)
        return None


def pickle_with_storages(obj: Any, protocol: int = 2) -> bytes:
    """``obj`` pickled as torch pickles a checkpoint's ``data.pkl`` (protocol 2, persistent
    storage references for :class:`StorageRef`)."""
    buffer = io.BytesIO()
    _StoragePickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()


def tensor_from(key: str, storage_numel: int, size: tuple[int, ...],
                stride: tuple[int, ...], offset: int = 0) -> Call:
    """A ``_rebuild_tensor_v2`` call on storage record ``key`` with any view geometry."""
    return Call(torch._utils._rebuild_tensor_v2, StorageRef(key, storage_numel), offset, size,
                stride, False, {})


def write_torch_zip(path: str, data_pkl: bytes, records: Mapping[str, bytes] = (),
                    compress: bool = False, folder: str = 'archive',
                    extra: Mapping[str, bytes] = ()) -> None:
    """A torch zip checkpoint: ``<folder>/data.pkl``, ``<folder>/data/<key>`` records and the
    version record; ``compress`` DEFLATEs every record; ``extra`` adds raw entries by name."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, 'w', compression=method) as archive:
        archive.writestr(f'{folder}/data.pkl', data_pkl)
        archive.writestr(f'{folder}/byteorder', 'little')
        for key, payload in dict(records).items():
            archive.writestr(f'{folder}/data/{key}', payload)
        archive.writestr(f'{folder}/version', '3\n')
        for name, payload in dict(extra).items():
            archive.writestr(name, payload)
