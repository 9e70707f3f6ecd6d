"""``LoadOccGTFromFile``: read the Occ3D-nuScenes ground truth of the key frame (spec 4.3.2)."""
from __future__ import annotations

from mmdet3d.formats.occ3d_labels import load_occ_gt
from mmdet3d.registry import TRANSFORMS

from .base import BaseTransform
from .utils import require


@TRANSFORMS.register_module()
class LoadOccGTFromFile(BaseTransform):
    """Load ``<occ_path>/labels.npz`` (validated by ``load_occ_gt``: a damaged or wrong file
    raises an error naming it and the sample token).

    The volumes are indexed [x, y, z] (200, 200, 16 for nuScenes) in the key frame's
    LiDAR-timestamp ego frame; semantics 0-17 (17 = free), masks 0/1.

    Required Keys:
        - occ_path (str): folder holding ``labels.npz``.

    Added Keys:
        - gt_occ (dict): ``semantics``, ``mask_lidar``, ``mask_camera`` (X, Y, Z) uint8 arrays
          (the file's names), in the key frame before the BEV augmentation.
    """

    def transform(self, results: dict) -> dict:
        folder = require(results, 'occ_path', 'LoadOccGTFromFile')
        results['gt_occ'] = dict(load_occ_gt(folder, token=results.get('sample_idx')))
        return results
