"""Reading Occ3D ground truth and writing occupancy predictions (``.npz`` files)."""
from __future__ import annotations

import os.path as osp

import numpy as np

from mmdet3d.utils.file_io import atomic_open

OCC_GT_KEYS = ('semantics', 'mask_lidar', 'mask_camera')


def load_occ_gt(occ_path: str) -> dict[str, np.ndarray]:
    """Load ``<occ_path>/labels.npz`` (Occ3D-nuScenes layout).

    Args:
        occ_path: folder of one sample's ``labels.npz``, or the ``.npz`` file itself.

    Returns:
        ``semantics``, ``mask_lidar``, ``mask_camera``: (X, Y, Z) uint8 arrays.
    """
    path = occ_path if occ_path.endswith('.npz') else osp.join(occ_path, 'labels.npz')
    if not osp.isfile(path):
        raise FileNotFoundError(f'Occ3D ground truth not found: {path}')
    with np.load(path) as data:
        missing = [k for k in OCC_GT_KEYS if k not in data.files]
        if missing:
            raise KeyError(f'{path} lacks the keys {missing}; found {data.files}')
        return {k: data[k] for k in OCC_GT_KEYS}


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
