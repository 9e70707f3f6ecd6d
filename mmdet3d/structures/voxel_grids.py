"""Voxel layouts and grids shared by the detector and the evaluation.

Layouts: inside the model every volume is (B, Z, Y, X, C) (the 3-D encoder's (B, C, Z, Y, X)
with the channels last, the order the renderer and the flow rows index); the Occ3D ground truth,
predictions and metrics are (X, Y, Z). :func:`swap_x_z` converts between the two, at prediction
and metric time only. Grids: integer refinement between a coarse model grid and a fine label
grid (e.g. 100x100x16 -> Occ3D's 200x200x16).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

Volume = TypeVar('Volume', np.ndarray, torch.Tensor)


def swap_x_z(volume: Volume, dim: int = 1) -> Volume:
    """(..., Z, Y, X, ...) <-> (..., X, Y, Z, ...) with the three voxel axes from ``dim`` on (its
    own inverse; a view for tensors)."""
    if isinstance(volume, torch.Tensor):
        return volume.transpose(dim, dim + 2)
    return np.swapaxes(volume, dim, dim + 2)


def grid_factors(fine_shape: Sequence[int], coarse_shape: Sequence[int]) -> tuple[int, ...]:
    """Integer per-axis factors from a coarse grid to a fine one.

    Raises:
        ValueError: if a fine size is not a multiple of the coarse one.
    """
    if len(fine_shape) != len(coarse_shape) or any(
            int(f) % int(c) for f, c in zip(fine_shape, coarse_shape)):
        raise ValueError(f'grid {list(fine_shape)} is not a multiple of {list(coarse_shape)}')
    return tuple(int(f) // int(c) for f, c in zip(fine_shape, coarse_shape))


def upsample_nearest(volume: Volume, factors: Sequence[int]) -> Volume:
    """Repeat each cell of a (..., X, Y, Z) array or tensor ``factors`` times per axis."""
    first = volume.ndim - len(factors)
    for offset, factor in enumerate(factors):
        if int(factor) == 1:
            continue
        if isinstance(volume, torch.Tensor):
            volume = volume.repeat_interleave(int(factor), dim=first + offset)
        else:
            volume = np.repeat(volume, int(factor), axis=first + offset)
    return volume
