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

#: results keys that are ground truth: packed as the data sample's field of the same name.
GT_KEYS = ('gt_depth', 'gt_rays', 'gt_flow', 'gt_occ')


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
    """Pack the network inputs, the ground truth and the per-sample metadata.

    Keys in ``keys`` that are absent from ``results`` are skipped (e.g. rays at test time).
    Ground-truth keys (``GT_KEYS``) become fields of the data sample, every other key an entry
    of ``inputs``. The Occ3D GT (``gt_occ``) is packed whenever it was loaded (training losses
    and evaluation read the same field).

    Required Keys:
        - the present subset of ``keys`` and ``meta_keys``.

    Added Keys:
        - inputs (dict): ``key -> Tensor`` or :class:`CameraInputs` (``img_inputs``).
        - data_samples (OccDataSample): metainfo from ``meta_keys``; ``gt_depth`` (Tensor),
          ``gt_rays`` (:class:`LidarRays`), ``gt_flow`` (Tensor (F, 11) uint8), ``gt_occ``
          (dict of numpy arrays) where present.

    Args:
        keys: results keys to pack. Defaults to
            ('img_inputs', 'gt_depth', 'gt_rays', 'gt_flow', 'gt_occ').
        meta_keys: results keys to put in the metainfo. Defaults to
            ('sample_idx', 'scene_name', 'occ_path', 'timestamp').
    """

    def __init__(self,
                 keys: Sequence[str] = ('img_inputs',) + GT_KEYS,
                 meta_keys: Sequence[str] = ('sample_idx', 'scene_name', 'occ_path',
                                             'timestamp')) -> None:
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        inputs = {key: to_tensor(results[key]) for key in self.keys
                  if key in results and key not in GT_KEYS}
        metainfo = {key: results[key] for key in self.meta_keys if key in results}
        data_sample = OccDataSample(metainfo=metainfo)
        for key in GT_KEYS:
            if key in results and (key in self.keys or key == 'gt_occ'):
                value = results[key]
                if key == 'gt_occ':
                    value = {name: np.asarray(volume) for name, volume in value.items()}
                else:
                    value = to_tensor(value)
                setattr(data_sample, key, value)
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})'
