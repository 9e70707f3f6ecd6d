"""``OccDataPreprocessor``: batch pseudo-collated pipeline outputs and move them to the device."""
from __future__ import annotations

from mmengine.model import BaseDataPreprocessor

from mmdet3d.registry import MODELS
from mmdet3d.structures.camera_inputs import CameraInputs


@MODELS.register_module()
class OccDataPreprocessor(BaseDataPreprocessor):
    """Stack the camera inputs of a batch and move inputs and data samples to the model's device.

    Takes the output of mmengine's ``pseudo_collate`` over ``PackOccInputs`` results, i.e.
    ``{'inputs': {key: per-sample items}, 'data_samples': [OccDataSample]}``: a list of B
    :class:`CameraInputs` (``img_inputs``). Images are already normalised by
    ``PrepareImageInputs``. The ground truth stays in the data samples (``gt_depth``,
    ``gt_rays``, ``gt_flow``: moved to the device; ``gt_occ``: numpy arrays, as the metrics read
    them); the model batches what it uses.

    Batched ``inputs``:
        - img_inputs: :class:`CameraInputs` stacked to (B, ...): imgs (B, N*F, 3, H, W),
          sensor2egos, ego2globals (B, N*F, 4, 4), intrins, post_rots (B, N*F, 3, 3),
          post_trans (B, N*F, 3), bda (B, 3, 3).
        - any other key: as collated (a list of B items).

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
                value = (value if isinstance(value, CameraInputs) else CameraInputs.stack(value)
                         ).to(self.device, non_blocking=self._non_blocking)
            inputs[key] = value
        return self.cast_data({'inputs': inputs, 'data_samples': data.get('data_samples')})
