"""Class-balanced log weights of the render losses (spec 3.1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# Voxel counts of Occ3D-nuScenes classes 0..16 (the original's global frequency table).
OCC3D_CLASS_FREQUENCIES: tuple[int, ...] = (
    1163161, 2309034, 188743, 2997643, 20317180, 852476, 243808, 2457947, 497017, 2731022,
    7224789, 214411435, 5565043, 63191967, 76098082, 128860031, 141625221)


def class_balanced_log_weights(
        frequencies: Sequence[float] = OCC3D_CLASS_FREQUENCIES) -> Tensor:
    """w_c = log(sum(f) / f_c), rescaled to mean 1 over the classes that occur (f_c > 0).

    A class that does not occur in the counts (f_c = 0, e.g. a category the data set lacks)
    gets the largest weight of the others, so that rays of it, should any come, are treated as
    the rarest class rather than dropped or weighted infinitely.

    Args:
        frequencies: per-class counts, length K, >= 0 and not all 0. Defaults to the Occ3D table.

    Returns:
        (K,) float32 weights (computed in float64).

    Raises:
        ValueError: a negative count, or fewer than two classes that occur (their weights would
            be 0 or undefined).
    """
    freq = torch.tensor([float(f) for f in frequencies], dtype=torch.float64)
    present = freq > 0
    if (freq < 0).any() or int(present.sum()) < 2:
        raise ValueError('class frequencies must be >= 0 with at least two classes > 0, got '
                         f'{list(frequencies)}')
    weights = torch.zeros_like(freq)
    weights[present] = torch.log(freq.sum() / freq[present])
    weights *= int(present.sum()) / weights.sum()
    weights[~present] = weights[present].max()
    return weights.float()
