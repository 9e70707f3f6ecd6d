"""Atomic file writing: nothing half-written is ever left at the destination."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


@contextmanager
def atomic_open(path: str) -> Iterator[BinaryIO]:
    """Open a temporary binary file beside ``path``; rename it to ``path`` on success.

    On any error the temporary file is removed and ``path`` is left untouched. Missing parent
    folders are created. The file gets the mode of a plain ``open`` under the process umask
    (``0o666 & ~umask``, e.g. 0644), not ``mkstemp``'s 0600.

    Args:
        path: destination file.

    Yields:
        the temporary file, opened for binary writing.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_open(path) as f:
        f.write(payload)


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
