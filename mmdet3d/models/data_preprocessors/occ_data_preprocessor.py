"""``OccDataPreprocessor``: batch pseudo-collated pipeline outputs and move them to the device."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from mmdet3d.registry import MODELS
from mmdet3d.structures.camera_inputs import CameraInputs

STACKED_KEYS = ('gt_depth', 'voxel_semantics', 'mask_lidar', 'mask_camera')


def _stack(items: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack a list of per-sample tensors along a new batch dim (a tensor is kept as is)."""
    return items if isinstance(items, torch.Tensor) else torch.stack(list(items))


@MODELS.register_module()
class OccDataPreprocessor(BaseDataPreprocessor):
    """Stack the fixed-size inputs of a batch and move everything to the model's device.

    Takes the output of mmengine's ``pseudo_collate`` over ``PackOccInputs`` results, i.e.
    ``{'inputs': {key: per-sample items}, 'data_samples': [OccDataSample]}``: lists of B
    :class:`CameraInputs` (``img_inputs``), B :class:`LidarRays` (``rays``) and B tensors.
    Images are already normalised by ``PrepareImageInputs``. Optional keys may be absent (e.g.
    no rays at test time).

    Batched ``inputs``:
        - img_inputs: :class:`CameraInputs` stacked to (B, ...): imgs (B, N*F, 3, H, W),
          sensor2egos, ego2globals (B, N*F, 4, 4), intrins, post_rots (B, N*F, 3, 3),
          post_trans (B, N*F, 3), bda (B, 3, 3).
        - gt_depth (B, N, H, W); voxel_semantics, mask_lidar, mask_camera (B, X, Y, Z):
          stacked.
        - rays: list of B :class:`LidarRays` (R_b rays each).
        - any other key (voxel_flow, points): list of B tensors.

    Args:
        non_blocking: use non-blocking host-to-device copies. Defaults to False.
    """

    def __init__(self, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        if 'inputs' not in data:
            raise KeyError(f'OccDataPreprocessor expects an "inputs" entry; got {sorted(data)}')
        inputs = {}
        for key, value in data['inputs'].items():
            if key == 'img_inputs':
                inputs[key] = (value if isinstance(value, CameraInputs)
                               else CameraInputs.stack(value)).to(
                                   self.device, non_blocking=self._non_blocking)
            elif key in STACKED_KEYS:
                inputs[key] = _stack(value)
            elif key == 'rays':
                inputs[key] = [sample.to(self.device, non_blocking=self._non_blocking)
                               for sample in value]
            else:
                inputs[key] = value
        return self.cast_data({'inputs': inputs, 'data_samples': data.get('data_samples')})
