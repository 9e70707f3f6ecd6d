"""``LoadOccGTFromFile``: read the Occ3D-nuScenes ground truth of the key frame (spec 4.3.2)."""
from __future__ import annotations

import os

import numpy as np

from mmdet3d.registry import TRANSFORMS

from .base import BaseTransform
from .utils import check_file, require

OCC_GT_KEYS = {'voxel_semantics': 'semantics', 'mask_lidar': 'mask_lidar',
               'mask_camera': 'mask_camera'}


@TRANSFORMS.register_module()
class LoadOccGTFromFile(BaseTransform):
    """Load ``<occ_gt_path>/labels.npz``.

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
        path = check_file(os.path.join(folder, 'labels.npz'), 'Occ3D ground truth')
        with np.load(path) as labels:
            for key, npz_key in OCC_GT_KEYS.items():
                if npz_key not in labels:
                    raise KeyError(f'{path} lacks the array {npz_key!r}')
                results[key] = labels[npz_key].astype(np.uint8)
        return results
