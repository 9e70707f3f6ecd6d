"""Class-balanced log weights of the render losses (spec 3.1)."""
from __future__ import annotations

import torch
from torch import Tensor

# Voxel counts of Occ3D-nuScenes classes 0..16 (the original's global frequency table).
OCC3D_CLASS_FREQUENCIES: tuple[int, ...] = (
    1163161, 2309034, 188743, 2997643, 20317180, 852476, 243808, 2457947, 497017, 2731022,
    7224789, 214411435, 5565043, 63191967, 76098082, 128860031, 141625221)


def class_balanced_log_weights(
        frequencies: tuple[int, ...] = OCC3D_CLASS_FREQUENCIES) -> Tensor:
    """w_c = log(sum(f) / f_c), rescaled to mean 1.

    Args:
        frequencies: per-class counts, length K. Defaults to the Occ3D table.

    Returns:
        (K,) float32 weights (computed in float64).
    """
    freq = torch.tensor(frequencies, dtype=torch.float64)
    weights = torch.log(freq.sum() / freq)
    return (weights * (len(frequencies) / weights.sum())).float()
