"""Shared helpers of the transforms: file and key checks, poses of info dicts, random draws."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mmdet3d.structures.pose import pose_matrix

RandomSource = np.random.Generator | np.random.RandomState


def check_file(path: str, what: str) -> str:
    """Raise ``FileNotFoundError`` naming ``what`` and ``path`` if the file does not exist."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    return path


def require(results: dict, key: str, transform: str) -> object:
    """Return ``results[key]`` or raise a ``KeyError`` naming the transform and the key."""
    if key not in results:
        raise KeyError(f'{transform} needs results[{key!r}]; present keys: {sorted(results)}')
    return results[key]


def make_rng(seed: int | None) -> RandomSource:
    """Random source of a transform.

    ``None`` returns numpy's global ``RandomState`` (seeded per dataloader worker by mmengine),
    an int a private ``np.random.Generator`` (deterministic, e.g. for tests).
    """
    if seed is None:
        return np.random.mtrand._rand  # the RandomState behind np.random.seed / np.random.uniform
    return np.random.default_rng(seed)


def sensor_poses(info: dict, prefix: str = '') -> tuple[np.ndarray, np.ndarray]:
    """``(sensor2ego, ego2global)`` (4, 4) float64 of an info dict (or a ``cams[name]`` entry).

    Args:
        info: dict with ``{prefix}2ego_translation/rotation`` and ``ego2global_*`` entries.
        prefix: ``'sensor'`` for a camera entry, ``'lidar'`` for a frame info.
    """
    sensor2ego = pose_matrix(info[f'{prefix}2ego_translation'], info[f'{prefix}2ego_rotation'])
    ego2global = pose_matrix(info['ego2global_translation'], info['ego2global_rotation'])
    return sensor2ego, ego2global


def cam2global_matrices(info: dict, cams: Sequence[str]) -> np.ndarray:
    """(N, 4, 4) float64 camera -> global of a frame: ``camego2global @ cam2camego`` per camera."""
    cam_infos = [info['cams'][cam] for cam in cams]
    sensor2ego = pose_matrix([c['sensor2ego_translation'] for c in cam_infos],
                             [c['sensor2ego_rotation'] for c in cam_infos])
    ego2global = pose_matrix([c['ego2global_translation'] for c in cam_infos],
                             [c['ego2global_rotation'] for c in cam_infos])
    return ego2global @ sensor2ego
