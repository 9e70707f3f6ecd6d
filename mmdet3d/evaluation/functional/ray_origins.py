"""RayIoU ray origins of every sample of an info pkl, from its scene's keyframe poses.

SparseOcc casts each sample's rays from the LiDAR positions of all keyframes of its scene,
expressed in the sample's ego frame, kept within ``|x|, |y| < 39`` m and subsampled to at most 8
(:func:`~.ray_iou.lidar_origins_in_ego`, :func:`~.ray_iou.select_ray_origins`). The poses come
from the infos of the converter (``mmdet3d/datasets/converters/nuscenes_infos.py``): per keyframe
``lidar2ego_*`` and ``ego2global_*`` (translation in metres, rotation as a (w, x, y, z)
quaternion), grouped by ``scene_token`` and ordered by ``timestamp``.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.structures.pose import pose_matrix

from .ray_iou import lidar_origins_in_ego, select_ray_origins

POSE_INFO_KEYS = ('token', 'scene_token', 'timestamp', 'lidar2ego_translation',
                  'lidar2ego_rotation', 'ego2global_translation', 'ego2global_rotation')


def ray_origins_per_sample(infos: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Selected ray origins of every sample.

    Args:
        infos: info dicts holding :data:`POSE_INFO_KEYS`, in any order; the split's infos of a
            scene are its keyframes.

    Returns:
        ``{token: (m, 3) float64 origins in metres, sample ego frame}``, 1 <= m <= 8.
    """
    scenes: dict[str, list[Mapping]] = defaultdict(list)
    for info in sorted(infos, key=lambda i: i['timestamp']):
        scenes[info['scene_token']].append(info)
    origins = {}
    for frames in scenes.values():
        lidar2ego = pose_matrix([f['lidar2ego_translation'] for f in frames],
                                [f['lidar2ego_rotation'] for f in frames])  # (n, 4, 4)
        ego2global = pose_matrix([f['ego2global_translation'] for f in frames],
                                 [f['ego2global_rotation'] for f in frames])  # (n, 4, 4)
        lidar2global = ego2global @ lidar2ego
        for frame, frame_ego2global in zip(frames, ego2global):
            origins[frame['token']] = select_ray_origins(
                lidar_origins_in_ego(frame_ego2global, lidar2global))
    return origins


def load_ray_origins(ann_file: str) -> dict[str, np.ndarray]:
    """:func:`ray_origins_per_sample` of the infos of ``ann_file``.

    Raises:
        FileNotFoundError, ValueError: the pkl is missing or unreadable.
        KeyError: an info lacks one of :data:`POSE_INFO_KEYS` (file, index and token named).
    """
    infos, _ = load_infos(ann_file, required_keys=POSE_INFO_KEYS)
    return ray_origins_per_sample(infos)
