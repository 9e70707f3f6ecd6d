"""Reading Occ3D ground truth and writing occupancy predictions (``.npz`` files)."""
from __future__ import annotations

import os.path as osp
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from mmdet3d.structures.occ3d import FREE_LABEL, GRID_SHAPE
from mmdet3d.utils.file_io import atomic_open

OCC_GT_KEYS = ('semantics', 'mask_lidar', 'mask_camera')
EXPECTED = (f'an .npz with uint8 arrays {", ".join(OCC_GT_KEYS)} of one (X, Y, Z) shape '
            f'(Occ3D-nuScenes: {GRID_SHAPE}), semantics 0-{FREE_LABEL}, masks 0/1')


class OccGTError(ValueError):
    """An Occ3D ground-truth file that cannot be read or does not hold what is expected."""


def occ_gt_file(occ_path: str) -> str:
    """``<occ_path>/labels.npz`` (``occ_path`` may also be the ``.npz`` itself)."""
    return occ_path if occ_path.endswith('.npz') else osp.join(occ_path, 'labels.npz')


def info_occ_path(info: dict, path_prefix: str | None, ann_file: str) -> str:
    """The ``occ_path`` of one info of ``ann_file``, joined to ``path_prefix`` when relative.

    Raises:
        KeyError: naming the pkl and the sample, when the info has no ``occ_path``.
    """
    occ_path = info.get('occ_path')
    if occ_path is None:
        raise KeyError(f'{ann_file}: info {info.get("token", "?")} has no occ_path')
    if path_prefix is not None and not osp.isabs(occ_path):
        occ_path = osp.join(path_prefix, occ_path)
    return occ_path


def _fail(path: str, token: str | None, problem: str) -> OccGTError:
    where = path if token is None else f'{path} (sample {token})'
    return OccGTError(f'{where}: {problem}; expected {EXPECTED}')


DAMAGED_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def load_occ_gt(occ_path: str, token: str | None = None,
                shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Load and validate one sample's Occ3D-nuScenes ``labels.npz``.

    Args:
        occ_path: folder of one sample's ``labels.npz``, or the ``.npz`` file itself.
        token: the sample token, named in errors. Defaults to None.
        shape: the (X, Y, Z) every array must have (e.g. the prediction's); None accepts any
            shape shared by the three arrays. Defaults to None.

    Returns:
        ``semantics``, ``mask_lidar``, ``mask_camera``: (X, Y, Z) uint8 arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        OccGTError: naming the file, the token and what was expected, when the file is damaged
            (not a zip, truncated, bad CRC), lacks a key or holds wrong shapes, dtypes or values.
    """
    path = _existing_file(occ_path, token)
    try:
        with np.load(path) as data:
            _check_layout(path, token, {k: None for k in data.files}, None)
            arrays = {k: data[k] for k in OCC_GT_KEYS}
    except DAMAGED_FILE_ERRORS as error:
        if isinstance(error, OccGTError):
            raise
        raise _fail(path, token, f'damaged file ({type(error).__name__}: {error})') from error
    _check_layout(path, token, {k: (v.shape, v.dtype) for k, v in arrays.items()}, shape)
    for key, value in arrays.items():
        high = FREE_LABEL if key == 'semantics' else 1
        if value.size and (value.min() < 0 or value.max() > high):
            raise _fail(path, token, f'{key} holds values {value.min()}..{value.max()}')
    return {k: v.astype(np.uint8, copy=False) for k, v in arrays.items()}


def check_occ_gt_headers(files: Sequence[tuple[str, str | None]],
                         shape: tuple[int, ...] | None = None) -> None:
    """Check every GT file of a split before inference, reading only the zip directory and the
    arrays' ``.npy`` headers (no decompression of the data); values are checked on loading.

    Args:
        files: (occ_path, token) per sample.
        shape: the (X, Y, Z) every array must have; None: the first file's shape.

    Raises:
        FileNotFoundError, OccGTError: for the first bad file, as :func:`load_occ_gt`.
    """
    for occ_path, token in files:
        path = _existing_file(occ_path, token)
        try:
            headers = _npz_headers(path)
        except DAMAGED_FILE_ERRORS as error:
            raise _fail(path, token, f'damaged file ({type(error).__name__}: {error})') from error
        _check_layout(path, token, headers, shape)
        shape = shape if shape is not None else headers['semantics'][0]


def _existing_file(occ_path: str, token: str | None) -> str:
    path = occ_gt_file(occ_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Occ3D ground truth not found: {path}'
                                + ('' if token is None else f' (sample {token})'))
    return path


def _check_layout(path: str, token: str | None,
                  found: dict[str, tuple[tuple[int, ...], np.dtype] | None],
                  shape: tuple[int, ...] | None) -> None:
    """The three arrays present (``found``: name -> (shape, dtype), or None when only the names
    are known yet), of one 3-D shape equal to ``shape`` if given, with integer or bool dtypes."""
    missing = [k for k in OCC_GT_KEYS if k not in found]
    if missing:
        raise _fail(path, token, f'lacks the arrays {missing} (found {sorted(found)})')
    if any(found[k] is None for k in OCC_GT_KEYS):
        return
    shapes = {k: tuple(found[k][0]) for k in OCC_GT_KEYS}
    if len(set(shapes.values())) != 1 or len(shapes['semantics']) != 3:
        raise _fail(path, token, f'array shapes {shapes}')
    if shape is not None and shapes['semantics'] != tuple(shape):
        raise _fail(path, token, f'shape {shapes["semantics"]}, but the prediction (or the '
                    f"split's first file) has {tuple(shape)}")
    for key in OCC_GT_KEYS:
        dtype = found[key][1]
        if dtype != np.bool_ and not np.issubdtype(dtype, np.integer):
            raise _fail(path, token, f'{key} has dtype {dtype}')


def _npz_headers(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of an ``.npz`` from its members' ``.npy`` headers."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith('.npy'):
                continue
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                               np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            headers[name[:-4]] = (tuple(shape), dtype)
    return headers


def save_occ_prediction(out_dir: str, scene_name: str, token: str,
                        semantics: np.ndarray) -> str:
    """Write ``<out_dir>/<scene_name>/<token>.npz`` with key ``semantics`` atomically.

    Args:
        out_dir: root folder of the predictions.
        scene_name: scene folder name, e.g. ``'scene-0003'``.
        token: sample token (file stem).
        semantics: (X, Y, Z) labels, stored as uint8 (17 = free).

    Returns:
        The written path.
    """
    path = osp.join(out_dir, scene_name, f'{token}.npz')
    with atomic_open(path) as f:
        np.savez_compressed(f, semantics=np.asarray(semantics, dtype=np.uint8))
    return path
