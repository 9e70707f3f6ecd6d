"""LoadFlowGT: frame-index remapping and class filtering of the stored voxel flow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmdet3d.datasets.transforms.flow_gt import LoadFlowGT
from mmdet3d.testing.geometry import occ3d_geometry


def _write(path: Path, frames: list[int], classes: list[int]) -> np.ndarray:
    flow = np.zeros((len(frames), 11), np.uint8)
    flow[:, :9] = np.arange(len(frames))[:, None]  # row id in the voxel columns
    flow[:, 9], flow[:, 10] = classes, frames
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, flow=flow, T=np.zeros((1, 4, 4), np.float32),
                        indices=np.zeros(len(frames), np.uint16))
    return flow


def test_remap_and_filter(tmp_path: Path) -> None:
    path = tmp_path / 'scene-0001' / 'tok.npz'
    #            s:  0  1  2  3  4  5  0  3  5  2
    _write(path, [0, 1, 2, 3, 4, 5, 0, 3, 5, 2], [4, 4, 7, 2, 10, 9, 1, 8, 3, 5])
    out = LoadFlowGT(occ3d_geometry(), data_root=str(tmp_path))(
        dict(scene_name='scene-0001', sample_idx='tok'))
    flow = out['gt_flow']
    assert flow.dtype == np.uint8 and flow.shape == (8, 11)
    np.testing.assert_array_equal(flow[:, 0], [0, 1, 2, 3, 4, 5, 8, 9])  # barrier, cone dropped
    np.testing.assert_array_equal(flow[:, 10], [0, 1, 2, 4, 5, 6, 6, 2])  # [0..5] -> [0,1,2,4,5,6]
    np.testing.assert_array_equal(flow[:, 9], [4, 4, 7, 2, 10, 9, 3, 5])


def test_subset_of_render_frames_and_flow_path(tmp_path: Path) -> None:
    path = tmp_path / 'f.npz'
    _write(path, [0, 1, 2, 3, 4, 5], [4] * 6)
    out = LoadFlowGT(occ3d_geometry(render_frame_ids=[-1, 0, 1]))(dict(flow_path=str(path)))
    np.testing.assert_array_equal(out['gt_flow'][:, 0], [2, 3])  # offsets -1 and +1 only
    np.testing.assert_array_equal(out['gt_flow'][:, 10], [0, 2])


def test_empty_and_missing(tmp_path: Path) -> None:
    path = tmp_path / 'empty.npz'
    np.savez_compressed(path, flow=np.zeros((0, 11), np.uint8), T=np.zeros((0, 4, 4), np.float32),
                        indices=np.zeros(0, np.uint16))
    assert LoadFlowGT(occ3d_geometry())(dict(flow_path=str(path)))['gt_flow'].shape == (0, 11)
    with pytest.raises(FileNotFoundError, match='scene-9/tok.npz'):
        LoadFlowGT(occ3d_geometry(), data_root=str(tmp_path))(
            dict(scene_name='scene-9', sample_idx='tok'))
