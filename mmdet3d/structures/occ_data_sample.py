"""``OccDataSample``: the one container that crosses from the data pipeline into the model.

Fields (all optional, set where the pipeline / model provides them):

- metainfo: ``sample_idx`` (sample token), ``scene_name``, ``occ_path`` (folder holding the
  Occ3D ``labels.npz``), ``eval_thresholds`` (density thresholds tau used at test time).
- ``gt_occ`` (dict): ``semantics``, ``mask_lidar``, ``mask_camera`` as (X, Y, Z) uint8 arrays
  or tensors (Occ3D ground truth, [x, y, z] indexed, 17 = free).
- ``pred_occ`` (Tensor): (n_tau, X, Y, Z) uint8 semantic prediction, one volume per density
  threshold in ``eval_thresholds``, with 17 (free) wherever density < tau.

Batched model inputs (images, camera geometry, rays, flow) travel in the ``inputs`` dict
built by ``PackOccInputs`` and ``OccDataPreprocessor``, not here.
"""
from __future__ import annotations

from mmengine.structures import BaseDataElement


class OccDataSample(BaseDataElement):
    """Per-sample metadata, ground truth and predictions of occupancy estimation."""

    @property
    def pred_occ(self):
        return self._pred_occ

    @pred_occ.setter
    def pred_occ(self, value) -> None:
        self.set_field(value, '_pred_occ', dtype=None)

    @pred_occ.deleter
    def pred_occ(self) -> None:
        del self._pred_occ

    @property
    def gt_occ(self) -> dict:
        return self._gt_occ

    @gt_occ.setter
    def gt_occ(self, value: dict) -> None:
        self.set_field(value, '_gt_occ', dtype=dict)

    @gt_occ.deleter
    def gt_occ(self) -> None:
        del self._gt_occ
