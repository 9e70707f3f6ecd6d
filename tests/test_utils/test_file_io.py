"""atomic_open: the destination only ever holds a complete file."""
from __future__ import annotations

import os
import stat

import pytest

from mmdet3d.utils.file_io import atomic_open


def test_atomic_open_writes_and_creates_folders(tmp_path):
    path = tmp_path / 'a' / 'b' / 'out.bin'
    with atomic_open(str(path)) as f:
        f.write(b'payload')
    assert path.read_bytes() == b'payload'
    assert sorted(p.name for p in path.parent.iterdir()) == ['out.bin']


def test_atomic_open_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_open(str(path)) as f:
            f.write(b'half')
            raise RuntimeError('interrupted')
    assert path.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['out.bin']


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_open_follows_the_umask_like_open(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with atomic_open(str(tmp_path / 'out.bin')) as f:
            f.write(b'x')
        with open(tmp_path / 'plain.bin', 'wb') as f:
            f.write(b'x')
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / 'out.bin').stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / 'plain.bin').stat().st_mode) == mode
