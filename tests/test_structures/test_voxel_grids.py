"""Grids shared by the detector and the evaluation: factors, nearest upsampling, majority
pooling, ray segments."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.structures.voxel_grids import (grid_factors, pool_majority, ray_segment_cells,
                                            swap_x_z, upsample_nearest)


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


def test_pool_majority_counts_each_block_by_hand_with_batch_axes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(2, 4, 6, 2)).astype(np.uint8)  # (B, X, Y, Z), 5 classes
    pooled = pool_majority(labels, (2, 3, 1), num_classes=5)
    assert pooled.shape == (2, 2, 2, 2) and pooled.dtype == np.uint8
    for b, x, y, z in np.ndindex(pooled.shape):
        block = labels[b, 2 * x:2 * x + 2, 3 * y:3 * y + 3, z]
        counts = np.bincount(block.ravel(), minlength=5)
        assert pooled[b, x, y, z] == np.flatnonzero(counts == counts.max())[0]  # ties: smallest
    as_tensor = pool_majority(torch.from_numpy(labels).long(), (2, 3, 1), num_classes=5)
    assert as_tensor.dtype == torch.long
    np.testing.assert_array_equal(as_tensor.numpy(), pooled)
    # pooling undoes nearest upsampling
    np.testing.assert_array_equal(pool_majority(upsample_nearest(pooled, (2, 3, 1)), (2, 3, 1),
                                                num_classes=5), pooled)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 5\)'):
        pool_majority(labels + 1, (2, 3, 1), num_classes=5)


def test_swap_x_z_converts_the_model_layout_to_occ3d_and_back():
    zyx = torch.arange(2 * 3 * 4 * 5 * 6).view(2, 3, 4, 5, 6)  # (B, Z, Y, X, C)
    xyz = swap_x_z(zyx)
    assert xyz.shape == (2, 5, 4, 3, 6)
    assert xyz[1, 4, 2, 0, 5] == zyx[1, 0, 2, 4, 5]  # voxel (x=4, y=2, z=0)
    assert torch.equal(swap_x_z(xyz), zyx)
    labels = np.arange(24).reshape(2, 3, 4)  # (X, Y, Z), no batch
    np.testing.assert_array_equal(swap_x_z(labels, dim=0), labels.transpose(2, 1, 0))


# a 4 x 4 x 2 grid of 1 m cells over [0, 4) x [0, 4) x [0, 2)
RAY_RANGE, RAY_GRID = (0.0, 0.0, 0.0, 4.0, 4.0, 2.0), (4, 4, 2)


def test_ray_segment_cells_samples_only_before_each_return():
    origins = torch.tensor([[0.0, 0.5, 0.5], [0.0, 2.5, 0.5]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    parts = list(ray_segment_cells(origins, directions, torch.tensor([3.0, 1.0]), RAY_RANGE,
                                   RAY_GRID, step=0.5, chunk=1))
    assert len(parts) == 2  # one per chunk of one ray; the ray indices are global
    (ids0, flat0), (ids1, flat1) = parts
    assert ids0.tolist() == [0] * 6 and ids1.tolist() == [1, 1]
    # flat index (x * 4 + y) * 2 + z: ray 0 in row (y 0, z 0) at x = 0.25 ... 2.75
    assert flat0.tolist() == [0, 0, 8, 8, 16, 16]
    assert flat1.tolist() == [4, 4]  # ray 1 at x = 0.25, 0.75 of row (y 2, z 0)
    with pytest.raises(ValueError, match='differ'):
        next(ray_segment_cells(origins, directions, torch.ones(3), RAY_RANGE, RAY_GRID))
