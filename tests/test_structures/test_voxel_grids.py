"""Grid refinement shared by the detector and the evaluation: factors and nearest upsampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.structures.voxel_grids import grid_factors, swap_x_z, upsample_nearest


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


def test_swap_x_z_converts_the_model_layout_to_occ3d_and_back():
    zyx = torch.arange(2 * 3 * 4 * 5 * 6).view(2, 3, 4, 5, 6)  # (B, Z, Y, X, C)
    xyz = swap_x_z(zyx)
    assert xyz.shape == (2, 5, 4, 3, 6)
    assert xyz[1, 4, 2, 0, 5] == zyx[1, 0, 2, 4, 5]  # voxel (x=4, y=2, z=0)
    assert torch.equal(swap_x_z(xyz), zyx)
    labels = np.arange(24).reshape(2, 3, 4)  # (X, Y, Z), no batch
    np.testing.assert_array_equal(swap_x_z(labels, dim=0), labels.transpose(2, 1, 0))
