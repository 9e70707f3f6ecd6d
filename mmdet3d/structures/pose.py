"""Rigid poses: nuScenes (w, x, y, z) quaternions and translations to 4x4 matrices, and back.

The one pose helper of the package, used by the data tools, the transforms and the metrics.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def quat_to_rotmat(quat: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrices of unit quaternions.

    Args:
        quat: (..., 4) quaternions (w, x, y, z); normalised here.

    Returns:
        (..., 3, 3) float64 rotation matrices.
    """
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rot = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return rot.reshape(q.shape[:-1] + (3, 3))


def pose_matrix(translation: Sequence[float] | np.ndarray,
                rotation: Sequence[float] | np.ndarray) -> np.ndarray:
    """Homogeneous transforms from translations (..., 3) and quaternions (..., 4) (w, x, y, z).

    Returns:
        (..., 4, 4) float64 matrices ``[[R, t], [0, 1]]``.
    """
    rot = quat_to_rotmat(rotation)
    mat = np.zeros(rot.shape[:-2] + (4, 4))
    mat[..., :3, :3] = rot
    mat[..., :3, 3] = np.asarray(translation, dtype=np.float64)
    mat[..., 3, 3] = 1.0
    return mat


def rigid_inverse(mat: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform: ``[[R^T, -R^T t], [0, 1]]``."""
    inv = np.eye(4)
    inv[:3, :3] = mat[:3, :3].T
    inv[:3, 3] = -mat[:3, :3].T @ mat[:3, 3]
    return inv
