"""``PackOccInputs``: results dict -> ``{'inputs': dict, 'data_samples': OccDataSample}``."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_data_sample import OccDataSample

from .base import BaseTransform
from .occ_gt import OCC_GT_KEYS

# metainfo key -> results key it is read from when the metainfo key itself is absent.
_META_SOURCES = {'occ_path': 'occ_gt_path'}


def to_tensor(value: object) -> object:
    """Tensors and typed containers stay; arrays and numbers become tensors; lists/tuples are
    converted per item."""
    if isinstance(value, (torch.Tensor, CameraInputs, LidarRays)):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (list, tuple)):
        return [to_tensor(v) for v in value]
    if isinstance(value, (int, float, np.number)):
        return torch.tensor(value)
    raise TypeError(f'cannot convert {type(value).__name__} to a tensor')


@TRANSFORMS.register_module()
class PackOccInputs(BaseTransform):
    """Pack the model inputs and the per-sample metadata.

    Keys in ``keys`` that are absent from ``results`` are skipped (e.g. rays at test time).
    If the Occ3D GT was loaded, it is also stored as ``data_sample.gt_occ`` (numpy arrays) for
    evaluation.

    Required Keys:
        - the present subset of ``keys`` and ``meta_keys``.

    Added Keys:
        - inputs (dict): ``key -> Tensor``, :class:`CameraInputs` (``img_inputs``) or
          :class:`LidarRays` (``rays``).
        - data_samples (OccDataSample): metainfo from ``meta_keys`` (``occ_path`` falls back to
          ``occ_gt_path``), ``gt_occ`` if present.

    Args:
        keys: results keys to put in ``inputs``. Defaults to
            ('img_inputs', 'gt_depth', 'rays', 'voxel_flow',
            'voxel_semantics', 'mask_lidar', 'mask_camera').
        meta_keys: results keys to put in the metainfo. Defaults to
            ('sample_idx', 'scene_name', 'occ_path', 'timestamp').
    """

    def __init__(self,
                 keys: Sequence[str] = ('img_inputs', 'gt_depth', 'rays', 'voxel_flow',
                                        'voxel_semantics', 'mask_lidar', 'mask_camera'),
                 meta_keys: Sequence[str] = ('sample_idx', 'scene_name', 'occ_path',
                                             'timestamp')) -> None:
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        inputs = {key: to_tensor(results[key]) for key in self.keys if key in results}
        metainfo = {}
        for key in self.meta_keys:
            source = key if key in results else _META_SOURCES.get(key)
            if source in results:
                metainfo[key] = results[source]
        data_sample = OccDataSample(metainfo=metainfo)
        if all(key in results for key in OCC_GT_KEYS):
            data_sample.gt_occ = {name: np.asarray(results[key])
                                  for key, name in OCC_GT_KEYS.items()}
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})'
