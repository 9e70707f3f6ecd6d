"""voxel_pooling_prepare_v2: a hand-built frustum, a loop oracle, the empty case and the golden
vectors of the original implementation."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from mmdet3d.ops.bev_pool_v2 import voxel_pooling_prepare_v2

LOWER, INTERVAL, SIZE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 2, 1)  # X, Y, Z


def hand_frustum() -> torch.Tensor:
    """(B=1, N=1, D=2, H=1, W=3, 3): flat point index = d * 3 + w, feat row = w."""
    points = [
        [0.5, 0.5, 0.5],   # 0 -> voxel (0, 0, 0), rank 0
        [1.5, 0.2, 0.1],   # 1 -> voxel (1, 0, 0), rank 1
        [-0.5, 0.5, 0.5],  # 2 -> truncation: rank 0; floor: x = -1, dropped
        [2.5, 0.5, 0.5],   # 3 -> x = 2, outside
        [0.2, 1.5, 0.3],   # 4 -> voxel (0, 1, 0), rank 2
        [0.9, 0.9, 0.9],   # 5 -> voxel (0, 0, 0), rank 0
    ]
    return torch.tensor(points).view(1, 1, 2, 1, 3, 3)


@pytest.mark.parametrize('truncate,expected', [
    (True, dict(bev=[0, 0, 0, 1, 2], depth=[0, 2, 5, 1, 4], feat=[0, 2, 2, 1, 1],
                starts=[0, 3, 4], lengths=[3, 1, 1])),
    (False, dict(bev=[0, 0, 1, 2], depth=[0, 5, 1, 4], feat=[0, 2, 1, 1],
                 starts=[0, 2, 3], lengths=[2, 1, 1])),
])
def test_hand_built_frustum(truncate, expected):
    result = voxel_pooling_prepare_v2(hand_frustum(), LOWER, INTERVAL, SIZE, truncate=truncate)
    names = ('bev', 'depth', 'feat', 'starts', 'lengths')
    for name, tensor in zip(names, result):
        assert tensor.dtype == torch.int32 and tensor.is_contiguous()
        assert tensor.tolist() == expected[name], name


def loop_oracle(coor, lower, interval, size, truncate):
    """Plain Python: per point voxel, keep, rank; sorted by (rank, point index)."""
    batch, cams, bins, height, width, _ = coor.shape
    size_x, size_y, size_z = size
    kept = []
    for idx, point in enumerate(coor.reshape(-1, 3).tolist()):
        scaled = [(p - lo) / step for p, lo, step in zip(point, lower, interval)]
        x, y, z = (math.trunc(v) if truncate else math.floor(v) for v in scaled)
        if 0 <= x < size_x and 0 <= y < size_y and 0 <= z < size_z:
            b = idx // (cams * bins * height * width)
            cam = idx // (bins * height * width)
            rank = ((b * size_z + z) * size_y + y) * size_x + x
            kept.append((rank, idx, cam * height * width + idx % (height * width)))
    kept.sort()
    return kept


@pytest.mark.parametrize('truncate', [True, False])
def test_matches_loop_oracle(truncate):
    lower, interval, size = (-2.0, -1.0, -0.5), (0.5, 0.25, 1.0), (8, 6, 3)
    coor = torch.rand(2, 3, 4, 3, 5, 3, dtype=torch.float64)
    coor = coor * torch.tensor([5.0, 2.5, 4.0]) + torch.tensor([-2.5, -1.5, -1.0])
    ranks_bev, ranks_depth, ranks_feat, starts, lengths = voxel_pooling_prepare_v2(
        coor, lower, interval, size, truncate=truncate)
    expected = loop_oracle(coor, lower, interval, size, truncate)
    assert 0 < len(expected) < coor.numel() // 3
    assert ranks_bev.tolist() == [e[0] for e in expected]
    assert ranks_depth.tolist() == [e[1] for e in expected]  # stable sort: index order
    assert ranks_feat.tolist() == [e[2] for e in expected]
    unique, counts = np.unique([e[0] for e in expected], return_counts=True)
    assert lengths.tolist() == counts.tolist()
    assert starts.tolist() == (np.cumsum(counts) - counts).tolist()
    assert len(unique) == starts.numel()


def test_no_point_inside_returns_none():
    coor = torch.full((1, 2, 3, 2, 2, 3), 100.0)
    assert voxel_pooling_prepare_v2(coor, LOWER, INTERVAL, SIZE) is None


def test_rejects_bad_coor_shape():
    with pytest.raises(ValueError, match=r'coor must have shape \(B, N, D, H, W, 3\)'):
        voxel_pooling_prepare_v2(torch.zeros(2, 3, 4, 3), LOWER, INTERVAL, SIZE)


def _interval_multisets(ranks_depth, ranks_feat, starts, lengths):
    return [Counter(zip(ranks_depth[s:s + n].tolist(), ranks_feat[s:s + n].tolist()))
            for s, n in zip(starts.tolist(), lengths.tolist())]


@pytest.mark.parametrize('prefix', ['', 'fine_'])
def test_golden_view_geometry(golden_dir, prefix):
    """The original's ranks (order within a voxel is free: compared as multisets)."""
    data = np.load(golden_dir / 'fn_view_geometry.npz')
    size = data[f'{prefix}grid_size'] if prefix else data['grid_size']
    lower = data['grid_lower_bound']
    # the fine variant is the real 0.4 m grid over the same bounds
    interval = np.full(3, 0.4, np.float32) if prefix else data['grid_interval']
    coor = torch.from_numpy(data[f'{prefix}out_coor'])
    result = voxel_pooling_prepare_v2(coor, lower, interval, size.astype(int))
    ranks_bev, ranks_depth, ranks_feat, starts, lengths = (t.numpy() for t in result)
    want = {k: data[f'{prefix}out_{k}'] for k in (
        'ranks_bev', 'ranks_depth', 'ranks_feat', 'interval_starts', 'interval_lengths')}
    np.testing.assert_array_equal(ranks_bev, want['ranks_bev'])
    np.testing.assert_array_equal(starts, want['interval_starts'])
    np.testing.assert_array_equal(lengths, want['interval_lengths'])
    assert _interval_multisets(ranks_depth, ranks_feat, starts, lengths) == _interval_multisets(
        want['ranks_depth'], want['ranks_feat'], want['interval_starts'],
        want['interval_lengths'])
