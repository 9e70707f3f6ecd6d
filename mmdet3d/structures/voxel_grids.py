"""Integer refinement between a coarse model grid and a fine label grid (e.g. 100x100x16 ->
Occ3D's 200x200x16), shared by the detector and the evaluation."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

Volume = TypeVar('Volume', np.ndarray, torch.Tensor)


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
