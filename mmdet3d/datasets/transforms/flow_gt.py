"""``LoadFlowGT``: precomputed voxel flow of the movable objects (spec 4.3.6, 5.2)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmdet3d.formats.flow_rows import flow_file, load_flow_rows
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.occ3d import FLOW_CLASS, FLOW_FILE_OFFSETS, FLOW_FRAME
from mmdet3d.structures.occ_geometry import OccGeometry

from .base import BaseTransform
from .utils import require


def remap_flow(flow: np.ndarray, render_frame_ids: Sequence[int],
               use_classes: Sequence[int]) -> np.ndarray:
    """Keep rows of offsets in ``render_frame_ids`` and of classes in ``use_classes``.

    Args:
        flow: (F, 11) uint8 ``[src z, y, x | tgt z, y, x | floor z, y, x | class | s]`` with
            s indexing ``FLOW_FILE_OFFSETS``.
        render_frame_ids: keyframe offsets of the render frames.
        use_classes: Occ3D classes whose voxels move.

    Returns:
        (F', 11) uint8, the frame column replaced by the index into ``render_frame_ids``.
    """
    lut = np.full(len(FLOW_FILE_OFFSETS), -1, dtype=np.int64)
    for s, offset in enumerate(FLOW_FILE_OFFSETS):
        if offset in render_frame_ids:
            lut[s] = list(render_frame_ids).index(offset)
    frame = lut[flow[:, FLOW_FRAME].astype(np.int64)]
    keep = (frame >= 0) & np.isin(flow[:, FLOW_CLASS], np.asarray(use_classes))
    out = flow[keep].copy()
    out[:, FLOW_FRAME] = frame[keep]
    return out


@TRANSFORMS.register_module()
class LoadFlowGT(BaseTransform):
    """Load the voxel flow file of the key frame and index it by render frame.

    The file is read by :func:`mmdet3d.formats.flow_rows.load_flow_rows`; its per-box transforms
    ``T`` and box ``indices`` are not used by the model and are not loaded.

    Required Keys:
        - flow_path (str), or scene_name + sample_idx to build
          ``<data_root>/<scene_name>/<sample_idx>.npz``.

    Added Keys:
        - gt_flow (np.ndarray): (F, 11) uint8 [src z, y, x | tgt z, y, x | floor z, y, x |
          class | render-frame index]; voxel indices in (z, y, x) order of the label grid,
          before the BEV augmentation (``LoadAnnotationsBEVDepth`` flips them).

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict): the rows are
            indexed by its ``render_frame_ids``.
        data_root: folder of the flow files, used when ``flow_path`` is absent.
            Defaults to 'data/flow'.
        use_classes: Occ3D classes that move (barrier 1 and traffic cone 8 excluded).
            Defaults to [2, 3, 4, 5, 6, 7, 9, 10].
    """

    def __init__(self,
                 geometry: OccGeometry | Mapping[str, Any],
                 data_root: str = 'data/flow',
                 use_classes: Sequence[int] = (2, 3, 4, 5, 6, 7, 9, 10)) -> None:
        self.geometry = OccGeometry.build(geometry)
        self.data_root = data_root
        self.render_frame_ids = list(self.geometry.render_frame_ids)
        self.use_classes = [int(c) for c in use_classes]

    def transform(self, results: dict) -> dict:
        path = results.get('flow_path')
        if path is None:
            scene = require(results, 'scene_name', 'LoadFlowGT')
            token = require(results, 'sample_idx', 'LoadFlowGT')
            path = flow_file(self.data_root, scene, token)
        results['gt_flow'] = remap_flow(load_flow_rows(path), self.render_frame_ids,
                                           self.use_classes)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(data_root={self.data_root!r}, '
                f'render_frame_ids={self.render_frame_ids}, use_classes={self.use_classes})')
