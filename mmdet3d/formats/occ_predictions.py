"""Occupancy prediction files: ``<out_dir>/<scene_name>/<token>.npz`` with the key ``semantics``.

Written by ``OccMetric`` (``tools/test.py --out``), read back by ``tools/eval_ray_iou.py`` and the
visualisation. ``semantics`` is an (X, Y, Z) uint8 label volume (17 = free).
"""
from __future__ import annotations

import glob
import os
import os.path as osp

import numpy as np

from mmdet3d.utils.file_io import atomic_open


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


def load_prediction(path: str) -> np.ndarray:
    """(X, Y, Z) uint8 labels of a prediction file (key ``semantics``)."""
    with np.load(path) as data:
        if 'semantics' not in data.files:
            raise KeyError(f'{path} lacks the key "semantics"; found {data.files}')
        semantics = data['semantics']
    if semantics.ndim != 3:
        raise ValueError(f'{path}: semantics must be (X, Y, Z), got shape {semantics.shape}')
    return semantics


def find_predictions(pred_dir: str) -> list[tuple[str, str, str]]:
    """Sorted (scene, token, path) of every ``<pred_dir>/<scene>/<token>.npz``."""
    paths = sorted(glob.glob(osp.join(pred_dir, '*', '*.npz')))
    return [(osp.basename(osp.dirname(p)), osp.splitext(osp.basename(p))[0], p) for p in paths]


def count_files(folder: str) -> int:
    """Files (and links) below ``folder``, recursively; 0 when it does not exist."""
    if not osp.isdir(folder):
        return 0
    return sum(len(files) for _, _, files in os.walk(folder))


def _holds_something(path: str) -> bool:
    if osp.isdir(path):
        with os.scandir(path) as entries:
            return any(True for _ in entries)
    return osp.lexists(path)


def check_prediction_dir(out_dir: str, overwrite: bool = False) -> int:
    """Refuse an output folder of predictions where writing would lose or mix data.

    Predictions never join earlier files: ``out_dir`` is refused when it exists and is not
    empty, unless ``overwrite`` (``tools/test.py --overwrite``), which replaces it as a whole
    once the new predictions are complete. ``<out_dir>.partial`` (the staging folder of earlier
    versions, or a user's) is refused when it exists and is not empty, unless ``overwrite``;
    it is never written to nor deleted.

    Args:
        out_dir: the ``--out`` folder.
        overwrite: allow replacing a non-empty ``out_dir``. Defaults to False.

    Returns:
        The number of files in ``out_dir`` that the run will replace (0 if none).

    Raises:
        NotADirectoryError: ``out_dir`` exists and is not a folder (even with ``overwrite``).
        FileExistsError: naming the folder and ``--overwrite``, as described above.
    """
    out_dir = osp.normpath(out_dir)
    if osp.lexists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'--out {out_dir} exists and is not a folder; predictions go '
                                 'into a folder: choose another path')
    if overwrite:
        return count_files(out_dir)
    if _holds_something(out_dir):
        raise FileExistsError(
            f'--out {out_dir} already exists and holds {count_files(out_dir)} files; new '
            'predictions are never mixed with earlier ones. Choose another folder, or pass '
            '--overwrite to replace it as a whole once this run has predicted the whole split')
    partial = out_dir + '.partial'
    if _holds_something(partial):
        raise FileExistsError(
            f'{partial} exists and is not empty ({count_files(partial)} files: an unfinished '
            f'run of an earlier version, or your data); tools/test.py --out {out_dir} never '
            'deletes it. Move it away, or pass --overwrite (which leaves it as it is)')
    return 0
