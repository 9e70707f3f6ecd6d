"""Reading Occ3D ground truth and writing occupancy predictions (``.npz`` files)."""
from __future__ import annotations

import os.path as osp
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from mmdet3d.utils.file_io import atomic_open

OCC_GT_KEYS = ('semantics', 'mask_lidar', 'mask_camera')
OCC3D_SHAPE = (200, 200, 16)
MAX_LABEL = 17  # free
EXPECTED = (f'an .npz with uint8 arrays {", ".join(OCC_GT_KEYS)} of one (X, Y, Z) shape '
            f'(Occ3D-nuScenes: {OCC3D_SHAPE}), semantics 0-{MAX_LABEL}, masks 0/1')


class OccGTError(ValueError):
    """An Occ3D ground-truth file that cannot be read or does not hold what is expected."""


def occ_gt_file(occ_path: str) -> str:
    """``<occ_path>/labels.npz`` (``occ_path`` may also be the ``.npz`` itself)."""
    return occ_path if occ_path.endswith('.npz') else osp.join(occ_path, 'labels.npz')


def _fail(path: str, token: str | None, problem: str) -> OccGTError:
    where = path if token is None else f'{path} (sample {token})'
    return OccGTError(f'{where}: {problem}; expected {EXPECTED}')


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
    path = occ_gt_file(occ_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Occ3D ground truth not found: {path}'
                                + ('' if token is None else f' (sample {token})'))
    try:
        with np.load(path) as data:
            missing = [k for k in OCC_GT_KEYS if k not in data.files]
            if missing:
                raise _fail(path, token, f'lacks the arrays {missing} (found {data.files})')
            arrays = {k: data[k] for k in OCC_GT_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, OccGTError):
            raise
        raise _fail(path, token, f'damaged file ({type(error).__name__}: {error})') from error
    _validate(arrays, path, token, shape)
    return {k: v.astype(np.uint8, copy=False) for k, v in arrays.items()}


def _validate(arrays: dict[str, np.ndarray], path: str, token: str | None,
              shape: tuple[int, ...] | None) -> None:
    shapes = {k: v.shape for k, v in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays['semantics'].ndim != 3:
        raise _fail(path, token, f'array shapes {shapes}')
    if shape is not None and arrays['semantics'].shape != tuple(shape):
        raise _fail(path, token, f'shape {arrays["semantics"].shape}, but the prediction is '
                    f'{tuple(shape)}')
    for key, value in arrays.items():
        if value.dtype != np.bool_ and not np.issubdtype(value.dtype, np.integer):
            raise _fail(path, token, f'{key} has dtype {value.dtype}')
        high = MAX_LABEL if key == 'semantics' else 1
        if value.size and (value.min() < 0 or value.max() > high):
            raise _fail(path, token, f'{key} holds values {value.min()}..{value.max()}')


def check_occ_gt_headers(files: Sequence[tuple[str, str | None]],
                         shape: tuple[int, ...] | None = None) -> None:
    """Check every GT file of a split before inference, reading only the zip directory and the
    arrays' ``.npy`` headers (no decompression of the data).

    Args:
        files: (occ_path, token) per sample.
        shape: the (X, Y, Z) every array must have; None: the first file's shape.

    Raises:
        FileNotFoundError, OccGTError: for the first bad file, as :func:`load_occ_gt`.
    """
    for occ_path, token in files:
        path = occ_gt_file(occ_path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'Occ3D ground truth not found: {path} (sample {token})')
        try:
            headers = _npz_headers(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise _fail(path, token, f'damaged file ({type(error).__name__}: {error})') from error
        missing = [k for k in OCC_GT_KEYS if k not in headers]
        if missing:
            raise _fail(path, token, f'lacks the arrays {missing} (found {sorted(headers)})')
        shapes = {k: headers[k][0] for k in OCC_GT_KEYS}
        shape = shape if shape is not None else shapes['semantics']
        if any(s != tuple(shape) for s in shapes.values()) or len(shape) != 3:
            raise _fail(path, token, f'array shapes {shapes}; the split\'s first file or the '
                        f'prediction has {tuple(shape)}')
        for key in OCC_GT_KEYS:
            dtype = headers[key][1]
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
