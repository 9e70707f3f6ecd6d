"""Deterministic, atomic file output for the demo dataset (same inputs -> same bytes)."""
from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def make_token(*parts: object) -> str:
    """A 32-hex-digit token derived from ``parts`` (stable across runs, like ``uuid4().hex``)."""
    return hashlib.md5('/'.join(str(p) for p in parts).encode()).hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.part')
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: object) -> None:
    _write_bytes(path, json.dumps(obj, indent=1).encode())


def write_array_bin(path: Path, array: np.ndarray) -> None:
    """Raw little-endian dump (``.pcd.bin`` float32, lidarseg ``.bin`` uint8)."""
    _write_bytes(path, np.ascontiguousarray(array).astype(array.dtype.newbyteorder('<')).tobytes())


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Compressed ``.npz`` readable by ``np.load``, with fixed zip timestamps (reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + '.npy', date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, npy.getvalue())
    _write_bytes(path, buf.getvalue())


def write_image(path: Path, rgb: np.ndarray, fmt: str = 'JPEG', quality: int = 92) -> None:
    """Encode an (H, W, 3) or (H, W) uint8 image with Pillow."""
    buf = io.BytesIO()
    kwargs = {'quality': quality} if fmt == 'JPEG' else {}
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    _write_bytes(path, buf.getvalue())


def swap_in(tmp_dir: Path, out_dir: Path) -> None:
    """Make ``tmp_dir`` appear at ``out_dir`` atomically, then delete the previous content.

    Uses Linux ``renameat2(RENAME_EXCHANGE)`` when ``out_dir`` exists, so a reader never sees
    a missing or half-written folder; elsewhere it falls back to two renames.
    """
    if not out_dir.exists():
        os.replace(tmp_dir, out_dir)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, 'renameat2', None)
    if renameat2 is not None and renameat2(
            _AT_FDCWD, os.fsencode(tmp_dir), _AT_FDCWD, os.fsencode(out_dir),
            _RENAME_EXCHANGE) == 0:
        shutil.rmtree(tmp_dir)
        return
    old = out_dir.with_name(out_dir.name + '.old')
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out_dir, old)
    os.replace(tmp_dir, out_dir)
    shutil.rmtree(old)
