"""``LoadAnnotationsBEVDepth``: BEV data augmentation (bda) of the key frame (spec 4.3.3)."""
from __future__ import annotations

import math

import numpy as np
import torch

from mmdet3d.registry import TRANSFORMS

from .base import BaseTransform
from .occ_gt import OCC_GT_KEYS
from .utils import make_rng, require


def bda_matrix(rotate: float, scale: float, flip_dx: bool, flip_dy: bool) -> np.ndarray:
    """(3, 3) float32 BEV augmentation ``flip @ (scale @ rot)`` acting on key-ego (x, y, z).

    Args:
        rotate: counter-clockwise rotation about z in degrees.
        scale: isotropic scale.
        flip_dx: negate x. flip_dy: negate y.
    """
    angle = rotate / 180 * math.pi
    rot = np.array([[math.cos(angle), -math.sin(angle), 0.0],
                    [math.sin(angle), math.cos(angle), 0.0],
                    [0.0, 0.0, 1.0]])
    flip = np.diag([-1.0 if flip_dx else 1.0, -1.0 if flip_dy else 1.0, 1.0])
    return (flip @ (scale * np.eye(3) @ rot)).astype(np.float32)


@TRANSFORMS.register_module()
class LoadAnnotationsBEVDepth(BaseTransform):
    """Sample the BEV augmentation, set it in ``img_inputs`` and flip the Occ3D GT.

    The original's detection boxes (``ann_infos``) are unused by OccFlowNet and not built. Only
    the flips act on the Occ3D GT: configs with a non-zero ``rot_lim`` or a scale other than 1
    would leave the GT unrotated, as in the original.

    Required Keys:
        - img_inputs (:class:`CameraInputs`): from ``PrepareImageInputs``, without a bda.

    Modified Keys:
        - img_inputs: ``bda`` (3, 3) float32 Tensor set.
        - voxel_semantics, mask_lidar, mask_camera (if present): (X, Y, Z), axis 0 reversed if
          flip_dx, axis 1 reversed if flip_dy.

    Args:
        bda_aug_conf: ``rot_lim`` (lo, hi) degrees, ``scale_lim`` (lo, hi), ``flip_dx_ratio``,
            ``flip_dy_ratio`` (probabilities).
        is_train: sample the augmentation; else identity.
        seed: None draws from numpy's global random state; an int gives a private,
            reproducible generator (every dataloader worker then repeats the same draws: use None
            for training). Defaults to None.
    """

    def __init__(self, bda_aug_conf: dict, is_train: bool, seed: int | None = None) -> None:
        missing = [k for k in ('rot_lim', 'scale_lim', 'flip_dx_ratio', 'flip_dy_ratio')
                   if k not in bda_aug_conf]
        if missing:
            raise KeyError(f'LoadAnnotationsBEVDepth: bda_aug_conf lacks {missing}')
        self.bda_aug_conf = bda_aug_conf
        self.is_train = is_train
        self.rng = make_rng(seed)

    def sample_bda_augmentation(self) -> dict:
        """Rotation (degrees), scale and the two flips; identity in test mode."""
        if not self.is_train:
            return dict(rotate=0.0, scale=1.0, flip_dx=False, flip_dy=False)
        conf = self.bda_aug_conf
        return dict(rotate=float(self.rng.uniform(*conf['rot_lim'])),
                    scale=float(self.rng.uniform(*conf['scale_lim'])),
                    flip_dx=bool(self.rng.uniform() < conf['flip_dx_ratio']),
                    flip_dy=bool(self.rng.uniform() < conf['flip_dy_ratio']))

    def transform(self, results: dict) -> dict:
        cameras = require(results, 'img_inputs', 'LoadAnnotationsBEVDepth')
        if cameras.bda is not None:
            raise ValueError('LoadAnnotationsBEVDepth: img_inputs already has a bda (applied '
                             'twice?)')
        aug = self.sample_bda_augmentation()
        results['img_inputs'] = cameras.with_bda(torch.from_numpy(bda_matrix(**aug)))
        for key in OCC_GT_KEYS:
            if key not in results:
                continue
            volume = results[key]
            if aug['flip_dx']:
                volume = volume[::-1]
            if aug['flip_dy']:
                volume = volume[:, ::-1]
            results[key] = np.ascontiguousarray(volume)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(is_train={self.is_train}, bda_aug_conf={self.bda_aug_conf})'
