"""``OccDataSample``: the one container of a sample's metadata, ground truth and prediction.

Fields (all optional, set where the pipeline / model provides them):

- metainfo: ``sample_idx`` (sample token), ``scene_name``, ``occ_path`` (folder holding the
  Occ3D ``labels.npz``), ``timestamp``, ``eval_thresholds`` (density thresholds tau used at
  test time).
- Ground truth, in the key frame's ego frame with the BEV augmentation applied (one transform,
  ``LoadAnnotationsBEVDepth``, applies it to all of it); training losses and evaluation read
  the same fields:

  - ``gt_depth`` (Tensor): (N, H, W) float32 sparse key-frame camera z-depth (m, 0 = no
    point), the view transformer's depth supervision.
  - ``gt_rays`` (:class:`~.lidar_rays.LidarRays`): the LiDAR rays of the render frames.
  - ``gt_flow`` (Tensor): (F, 11) uint8 occupancy-flow rows in label-grid voxel indices
    (``mmdet3d.structures.occ3d`` FLOW_* columns).
  - ``gt_occ`` (dict): ``semantics``, ``mask_lidar``, ``mask_camera`` as (X, Y, Z) uint8 numpy
    arrays (Occ3D ground truth, [x, y, z] indexed, 17 = free).

- ``pred_occ`` (Tensor): (n_tau, X, Y, Z) uint8 semantic prediction, one volume per density
  threshold in ``eval_thresholds``, with 17 (free) wherever density < tau.

The network inputs (images and camera geometry, ``img_inputs``) travel in the ``inputs`` dict
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
