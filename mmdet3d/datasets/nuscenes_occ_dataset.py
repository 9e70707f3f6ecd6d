"""``NuScenesDatasetOccpancy``: info pkls -> per-sample dicts with temporal context (spec 4.2).

Frames are neighbours in the timestamp-sorted info list. A neighbour index is clamped into
``[0, len - 1]`` and replaced by the current frame when it belongs to another scene
(``scene_token``), for both the adjacent (temporal fusion) and the render frames.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmengine.dataset import BaseDataset

from mmdet3d.formats.flow_rows import flow_path
from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.registry import DATASETS, TRANSFORMS
from mmdet3d.structures.occ3d import CLASS_NAMES
from mmdet3d.structures.occ_geometry import OccGeometry, with_geometry

REQUIRED_KEYS = ('token', 'timestamp', 'scene_name', 'scene_token', 'lidar_path', 'lidar_idx',
                 'panoptic_path', 'occ_path', 'lidar2ego_translation', 'lidar2ego_rotation',
                 'ego2global_translation', 'ego2global_rotation', 'cams')
RENDER_FRAME_KEYS = ('lidar_idx', 'lidar_path', 'lidar2ego_translation', 'lidar2ego_rotation',
                     'ego2global_translation', 'ego2global_rotation', 'cams', 'panoptic_path')


@DATASETS.register_module()
class NuScenesDatasetOccpancy(BaseDataset):
    """nuScenes + Occ3D keyframes for OccFlowNet (the original's class name, typo included).

    ``get_data_info(i)`` returns (see docs/data_flow.md section 1):

    - ``sample_idx`` (sample token), ``pts_filename``, ``sweeps`` ([]), ``timestamp`` (s),
      ``lidar_idx``, ``panoptic_filename``, ``scene_name``, ``scene_token``;
    - ``curr``: the key frame's info dict;
    - ``adjacent``: infos at ``i - o`` for ``o`` in the geometry's ``adjacent_frames``
      ([t-1, t-2]);
    - ``render_frames``: infos at ``i + o`` for ``o`` in its ``render_frame_ids`` (-3..3),
      reduced to ``RENDER_FRAME_KEYS``;
    - ``occ_path`` (folder of ``labels.npz``) and ``flow_path``
      (``<flow_root>/<scene_name>/<token>.npz``);
    - ``frame_index``, ``adjacent_indices``, ``render_frame_indices``: the sorted-list indices
      actually used (after clamping and the same-scene fallback).

    Args:
        ann_file: info pkl (spec 5.1), joined to ``data_root`` when relative and data_root is set.
        geometry: the scene geometry (an ``OccGeometry`` or its config dict): the frames, and
            handed to every pipeline step config whose registered class takes a ``geometry``
            (a step with a different geometry of its own is refused).
        pipeline: transform configs or callables. Defaults to ().
        data_root: mmengine data root for ``ann_file``. Defaults to ''.
        flow_root: folder of the flow ground truth (spec 5.2). Defaults to 'data/flow'.
        path_prefix: joined to the relative paths stored in the infos (``lidar_path``,
            ``panoptic_path``, ``occ_path``, cams ``data_path``); None keeps them relative to the
            working directory as in the original. Defaults to None.
        test_mode: mmengine test mode (no refetch on pipeline failure). Defaults to False.
        indices: keep only these indices of the sorted list (mmengine). Defaults to None.
        serialize_data: mmengine info serialisation. Defaults to True.
        lazy_init: defer loading the pkl until first access. Defaults to False.
        max_refetch: mmengine refetch attempts in train mode. Defaults to 1000.
    """

    METAINFO = dict(classes=CLASS_NAMES)

    def __init__(self,
                 ann_file: str,
                 geometry: OccGeometry | Mapping[str, Any],
                 pipeline: Sequence[dict | Callable] = (),
                 data_root: str = '',
                 flow_root: str = 'data/flow',
                 path_prefix: str | None = None,
                 test_mode: bool = False,
                 indices: int | Sequence[int] | None = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        self.flow_root = flow_root
        self.path_prefix = path_prefix
        self.geometry = OccGeometry.build(geometry)
        super().__init__(
            ann_file=ann_file, data_root=data_root, data_prefix=dict(), indices=indices,
            serialize_data=serialize_data,
            pipeline=[self._with_geometry(step, i) for i, step in enumerate(pipeline)],
            test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    def _with_geometry(self, step: dict | Callable, index: int) -> dict | Callable:
        """A step config with the dataset's geometry when its class takes one."""
        if not isinstance(step, Mapping):
            return step
        cls = step.get('type')
        cls = TRANSFORMS.get(cls) if isinstance(cls, str) else cls
        if not inspect.isclass(cls) or 'geometry' not in inspect.signature(cls).parameters:
            return step
        return with_geometry(step, self.geometry, f'pipeline step {index} ({cls.__name__})')

    def _resolve(self, path: str) -> str:
        if self.path_prefix is None or os.path.isabs(path):
            return path
        return os.path.join(self.path_prefix, path)

    def load_data_list(self) -> list[dict[str, Any]]:
        """Infos of ``ann_file`` sorted by timestamp (stable), with stored paths resolved."""
        infos, _ = load_infos(self.ann_file, required_keys=REQUIRED_KEYS)
        infos = sorted(infos, key=lambda info: info['timestamp'])
        if self.path_prefix is not None:
            for info in infos:
                for key in ('lidar_path', 'panoptic_path', 'occ_path'):
                    info[key] = self._resolve(info[key])
                for cam in info['cams'].values():
                    cam['data_path'] = self._resolve(cam['data_path'])
        return infos

    def _info(self, idx: int) -> dict[str, Any]:
        info = super().get_data_info(idx)
        info.pop('sample_idx')
        return info

    def _neighbour(self, idx: int, offset: int, scene_token: str) -> int:
        """Index ``idx + offset`` clamped into the list; ``idx`` if that frame is in another
        scene."""
        other = min(max(idx + offset, 0), len(self) - 1)
        return other if self._info(other)['scene_token'] == scene_token else idx

    def get_data_info(self, idx: int) -> dict[str, Any]:
        idx = idx + len(self) if idx < 0 else idx
        info = self._info(idx)
        scene = info['scene_token']
        adjacent_indices = [self._neighbour(idx, -o, scene)
                            for o in self.geometry.adjacent_frames]
        render_indices = [self._neighbour(idx, o, scene) for o in self.geometry.render_frame_ids]
        render_frames = []
        for i in render_indices:
            frame = info if i == idx else self._info(i)
            render_frames.append({key: frame[key] for key in RENDER_FRAME_KEYS})
        return dict(
            sample_idx=info['token'],
            pts_filename=info['lidar_path'],
            sweeps=[],
            timestamp=info['timestamp'] / 1e6,
            lidar_idx=info['lidar_idx'],
            panoptic_filename=info['panoptic_path'],
            scene_name=info['scene_name'],
            scene_token=scene,
            curr=info,
            adjacent=[info if i == idx else self._info(i) for i in adjacent_indices],
            render_frames=render_frames,
            occ_path=info['occ_path'],
            flow_path=flow_path(self.flow_root, info),
            frame_index=idx,
            adjacent_indices=adjacent_indices,
            render_frame_indices=render_indices,
        )
