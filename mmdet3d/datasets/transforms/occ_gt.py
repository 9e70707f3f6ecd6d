"""``LoadOccGTFromFile``: read the Occ3D-nuScenes ground truth of the key frame (spec 4.3.2)."""
from __future__ import annotations

from mmdet3d.formats.occ3d_labels import load_occ_gt
from mmdet3d.registry import TRANSFORMS

from .base import BaseTransform
from .utils import require

OCC_GT_KEYS = {'voxel_semantics': 'semantics', 'mask_lidar': 'mask_lidar',
               'mask_camera': 'mask_camera'}


@TRANSFORMS.register_module()
class LoadOccGTFromFile(BaseTransform):
    """Load ``<occ_gt_path>/labels.npz`` (validated by ``load_occ_gt``: a damaged or wrong file
    raises an error naming it and the sample token).

    The volumes are indexed [x, y, z] (200, 200, 16 for nuScenes) in the key frame's
    LiDAR-timestamp ego frame; semantics 0-17 (17 = free), masks 0/1.

    Required Keys:
        - occ_gt_path (str): folder holding ``labels.npz``.

    Added Keys:
        - voxel_semantics (np.ndarray): (X, Y, Z) uint8.
        - mask_lidar (np.ndarray): (X, Y, Z) uint8.
        - mask_camera (np.ndarray): (X, Y, Z) uint8.
    """

    def transform(self, results: dict) -> dict:
        folder = require(results, 'occ_gt_path', 'LoadOccGTFromFile')
        labels = load_occ_gt(folder, token=results.get('sample_idx'))
        for key, npz_key in OCC_GT_KEYS.items():
            results[key] = labels[npz_key]
        return results
