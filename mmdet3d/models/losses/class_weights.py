"""Class-balanced log weights of the render losses (spec 3.1): each rendered ray is weighted by
the weight of its LiDAR label (``ClassBalancedLogWeights``, ``OccFlowNet(ray_class_weights=...)``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures.occ3d import NUM_SEMANTIC_CLASSES

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


@MODELS.register_module()
class ClassBalancedLogWeights(nn.Module):
    """The weight of each ray's class: :func:`class_balanced_log_weights` of the counts.

    The weights are a non-persistent buffer: they follow the module's device and leave no
    state-dict entry (as the original's).

    Args:
        class_frequencies: per-class voxel counts (17) the weights are computed from; None:
            Occ3D-nuScenes' table, as the original. ``tools/misc/class_frequencies.py`` counts
            them for a config's train split. Defaults to None.
    """

    def __init__(self, class_frequencies: Sequence[float] | None = None) -> None:
        super().__init__()
        if class_frequencies is None:
            weights = class_balanced_log_weights()
        elif len(class_frequencies) != NUM_SEMANTIC_CLASSES:
            raise ValueError(f'class_frequencies needs {NUM_SEMANTIC_CLASSES} counts (Occ3D '
                             f'classes 0-{NUM_SEMANTIC_CLASSES - 1}), got {len(class_frequencies)}')
        else:
            weights = class_balanced_log_weights(class_frequencies)
        self.register_buffer('class_weights', weights, persistent=False)

    def forward(self, labels: Tensor) -> Tensor:
        """(R,) class labels (any integer dtype) -> (R,) float32 weights."""
        return self.class_weights[labels.long()]
