"""Integrity check of a generated demo set; every failure names the offending file."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from .generator import VERSION
from .occ3d import GRID_SHAPE
from .tables import TABLE_NAMES


class DemoDataError(RuntimeError):
    """A file of the demo set is missing or corrupt (the message starts with its path)."""


def _load_table(path: Path) -> list[dict]:
    if not path.is_file():
        raise DemoDataError(f'{path}: missing table')
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DemoDataError(f'{path}: not valid JSON ({err})') from err
    if not isinstance(records, list):
        raise DemoDataError(f'{path}: expected a JSON list of records')
    return records


def _n_points(path: Path) -> int:
    if not path.is_file():
        raise DemoDataError(f'{path}: missing point cloud')
    size = path.stat().st_size
    if size == 0 or size % 20:
        raise DemoDataError(f'{path}: size {size} B is not a positive multiple of 5 float32')
    return size // 20


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DemoDataError(f'{path}: missing {what}')
    try:
        with np.load(path) as npz:
            return dict(npz)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DemoDataError(f'{path}: unreadable {what} ({err})') from err


def check_dataset(root: str | Path, version: str = VERSION) -> None:
    """Check tables, sensor files, lidarseg/panoptic lengths and Occ3D ``labels.npz`` files.

    Raises:
        DemoDataError: naming the first missing or corrupt file.
    """
    root = Path(root)
    tables = {name: _load_table(root / version / f'{name}.json') for name in TABLE_NAMES}
    points: dict[str, int] = {}
    for rec in tables['sample_data']:
        path = root / rec['filename']
        if rec['fileformat'] == 'pcd':
            points[rec['token']] = _n_points(path)
            continue
        if not path.is_file():
            raise DemoDataError(f'{path}: missing image')
        try:
            with Image.open(path) as img:
                size = img.size
                img.verify()
        except OSError as err:
            raise DemoDataError(f'{path}: unreadable image ({err})') from err
        if size != (rec['width'], rec['height']):
            raise DemoDataError(f'{path}: size {size} != table {rec["width"]}x{rec["height"]}')
    for rec in tables['lidarseg']:
        path = root / rec['filename']
        if not path.is_file():
            raise DemoDataError(f'{path}: missing lidarseg labels')
        if path.stat().st_size != points[rec['sample_data_token']]:
            raise DemoDataError(f'{path}: label count != point count')
    for rec in tables['panoptic']:
        path = root / rec['filename']
        data = _load_npz(path, 'panoptic labels').get('data')
        if data is None or data.shape != (points[rec['sample_data_token']],):
            raise DemoDataError(f'{path}: "data" missing or label count != point count')
    scene_name = {s['token']: s['name'] for s in tables['scene']}
    for sample in tables['sample']:
        path = root / 'gts' / scene_name[sample['scene_token']] / sample['token'] / 'labels.npz'
        arrays = _load_npz(path, 'Occ3D labels')
        for key in ('semantics', 'mask_lidar', 'mask_camera'):
            arr = arrays.get(key)
            if arr is None or arr.shape != GRID_SHAPE or arr.dtype != np.uint8:
                raise DemoDataError(f'{path}: "{key}" missing or not uint8 {GRID_SHAPE}')
    for rec in tables['map']:
        if not (root / rec['filename']).is_file():
            raise DemoDataError(f'{root / rec["filename"]}: missing map mask')
