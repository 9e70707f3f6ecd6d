"""The Occ3D ground-truth file ``labels.npz``: its one checked reader and the pre-run header check.

A ``labels.npz`` holds exactly ``semantics.npy``, ``mask_lidar.npy`` and ``mask_camera.npy``:
(X, Y, Z) uint8 arrays (Occ3D-nuScenes: 200 x 200 x 16), semantics 0-17 (17 = free), masks 0/1.
Every reader of the ground truth (metrics, ``LoadOccGTFromFile``, the prior, the visualisation)
goes through :func:`load_occ_gt`; ``tools/test.py`` checks a whole split's files first with
:func:`check_occ_gt_headers`.
"""
from __future__ import annotations

import os.path as osp
import zipfile
from collections.abc import Sequence

import numpy as np

from mmdet3d.structures.occ3d import FREE_LABEL, GRID_SHAPE

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


#: the members of an Occ3D ``labels.npz``: one ``.npy`` per array, nothing else
OCC_GT_MEMBERS = tuple(f'{key}.npy' for key in OCC_GT_KEYS)
#: room for one member's ``.npy`` header (numpy reads at most 10000 header bytes)
NPY_HEADER_SLACK = 1 << 14
#: the widest dtype a GT array may have (int64 / uint64; uint8 is what Occ3D writes)
MAX_GT_ITEMSIZE = 8
#: the most voxels of a GT array when no shape is expected yet: 26x Occ3D-nuScenes
#: (200 x 200 x 16 = 640,000), above OpenOccupancy's 512 x 512 x 40; 128 MiB as int64
MAX_GT_VOXELS = 1 << 24


def load_occ_gt(occ_path: str, token: str | None = None,
                shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Load and validate one sample's Occ3D-nuScenes ``labels.npz``.

    Before any array is read, the zip directory and the ``.npy`` headers are checked as by
    :func:`check_occ_gt_headers` (no duplicate or unknown members, no member larger than its
    shape needs); the arrays are then read from exactly the members that were checked.

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
            (not a zip, truncated, bad CRC), lacks a key, holds other or duplicate members or
            members larger than their shape needs, or holds wrong shapes, dtypes or values.
    """
    path = _existing_file(occ_path, token)
    arrays = _read_occ_npz(path, token, shape, values=True)
    for key, value in arrays.items():
        high = FREE_LABEL if key == 'semantics' else 1
        if value.size and (value.min() < 0 or value.max() > high):
            raise _fail(path, token, f'{key} holds values {value.min()}..{value.max()}')
    return {k: v.astype(np.uint8, copy=False) for k, v in arrays.items()}


def check_occ_gt_headers(files: Sequence[tuple[str, str | None]],
                         shape: tuple[int, ...] | None = None) -> None:
    """Check every GT file of a split before inference, reading only the zip directory and the
    arrays' ``.npy`` headers (no decompression of the data); values are checked on loading.

    From the zip directory alone (before any member is opened) a file is refused that holds a
    member name twice (numpy would read the last copy, the header check the first), a member
    other than ``semantics.npy``, ``mask_lidar.npy``, ``mask_camera.npy``, or a member whose
    uncompressed size (``ZipInfo.file_size``, which also bounds what decompression can yield,
    whatever the compression ratio) exceeds an ``.npy`` header plus ``prod(shape)`` voxels of
    :data:`MAX_GT_ITEMSIZE` bytes (``shape`` known: the argument or the split's first file;
    else :data:`MAX_GT_VOXELS`). Then each header must declare exactly the member's size.

    Args:
        files: (occ_path, token) per sample.
        shape: the (X, Y, Z) every array must have; None: the first file's shape.

    Raises:
        FileNotFoundError, OccGTError: for the first bad file, as :func:`load_occ_gt`.
    """
    for occ_path, token in files:
        path = _existing_file(occ_path, token)
        headers = _read_occ_npz(path, token, shape, values=False)
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


def _max_voxels(shape: tuple[int, ...] | None) -> tuple[int, str]:
    """The most voxels one GT array may hold, and how that bound is named in errors."""
    if shape is None:
        return MAX_GT_VOXELS, f'at most {MAX_GT_VOXELS} voxels'
    return int(np.prod(shape, dtype=np.int64)), f'a {tuple(shape)} volume'


def _read_occ_npz(path: str, token: str | None, shape: tuple[int, ...] | None,
                  values: bool) -> dict:
    """The checked members of ``path``: {name: (shape, dtype)} from the ``.npy`` headers, or
    with ``values`` {name: array} read from the very members that were checked.

    Order: the file size on disk, the zip directory (names, duplicates, uncompressed sizes;
    nothing opened yet), the ``.npy`` headers (each member's size must be exactly its header
    plus its declared data), the layout (:func:`_check_layout`), then the values if asked.
    """
    # the zip directory is read whole: first bound the file (stored members, + zip headers)
    file_limit = len(OCC_GT_MEMBERS) * (NPY_HEADER_SLACK + MAX_GT_VOXELS * MAX_GT_ITEMSIZE
                                        + 1024) + 65536
    size = osp.getsize(path)
    if size > file_limit:
        raise _fail(path, token, f'{size} bytes on disk, more than the {file_limit} that three '
                    f'arrays of at most {MAX_GT_VOXELS} voxels take')
    voxels, bound = _max_voxels(shape)
    member_limit = NPY_HEADER_SLACK + voxels * MAX_GT_ITEMSIZE
    try:
        with zipfile.ZipFile(path) as archive:
            members = _directory_members(archive, path, token, member_limit, bound)
            _check_layout(path, token, {name: None for name in members}, None)
            headers = {name: _member_header(archive, info, path, token)
                       for name, info in members.items()}
            _check_layout(path, token, headers, shape)
            if not values:
                return headers
            arrays = {}
            for name in OCC_GT_KEYS:
                with archive.open(members[name]) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays
    except MemoryError:
        raise
    except Exception as error:  # a damaged zip or .npy header raises many types (zipfile,
        if isinstance(error, OccGTError):  # zlib, numpy's header parser: tokenize, ast, ...)
            raise
        raise _fail(path, token, f'damaged file ({type(error).__name__}: {error})') from error


def _directory_members(archive: zipfile.ZipFile, path: str, token: str | None,
                       member_limit: int, bound: str) -> dict[str, zipfile.ZipInfo]:
    """{array name: ZipInfo} after the checks that need only the zip directory."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if name not in OCC_GT_MEMBERS:
            raise _fail(path, token, f'holds a member {name!r}; an Occ3D labels.npz holds only '
                        f'{", ".join(OCC_GT_MEMBERS)}')
        if name[:-4] in members:
            raise _fail(path, token, f'holds the member {name} twice (a later copy shadows the '
                        'first when read)')
        if info.file_size > member_limit:
            raise _fail(path, token, f'member {name} unpacks to {info.file_size} bytes '
                        f'({info.compress_size} stored, zip directory), more than the '
                        f'{member_limit} that {bound} of at most {MAX_GT_ITEMSIZE}-byte '
                        'integers and an .npy header take')
        members[name[:-4]] = info
    return members


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                   token: str | None) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one member's ``.npy`` header, whose data must fill the member."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        declared, _, dtype = read_header(member)
        header_bytes = member.tell()
    declared = tuple(int(n) for n in declared)
    # the member's size is bounded by the directory check; so is then the declared shape
    count = int(np.prod(declared, dtype=object)) if declared else 1
    needed = header_bytes + count * dtype.itemsize
    if info.file_size != needed:
        raise _fail(path, token, f'member {info.filename} holds {info.file_size} bytes, but '
                    f'its header ({header_bytes} bytes) declares {declared} {dtype}: '
                    f'{needed} bytes')
    return declared, dtype
