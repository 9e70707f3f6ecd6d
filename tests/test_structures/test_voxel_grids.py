"""Grid refinement shared by the detector and the evaluation: factors and nearest upsampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.structures.voxel_grids import grid_factors, upsample_nearest


def test_grid_factors_and_their_error():
    assert grid_factors((200, 200, 16), (100, 100, 16)) == (2, 2, 1)
    with pytest.raises(ValueError, match=r'grid \[200, 200, 16\] is not a multiple of '
                                         r'\[30, 100, 16\]'):
        grid_factors((200, 200, 16), (30, 100, 16))


def test_upsample_nearest_repeats_the_last_three_axes_for_arrays_and_tensors():
    coarse = np.arange(2 * 2 * 3 * 2).reshape(2, 2, 3, 2)  # (B, X, Y, Z)
    fine = upsample_nearest(coarse, (2, 1, 3))
    assert fine.shape == (2, 4, 3, 6)
    for b, x, y, z in np.ndindex(fine.shape):
        assert fine[b, x, y, z] == coarse[b, x // 2, y, z // 3]
    np.testing.assert_array_equal(upsample_nearest(torch.from_numpy(coarse), (2, 1, 3)).numpy(),
                                  fine)
