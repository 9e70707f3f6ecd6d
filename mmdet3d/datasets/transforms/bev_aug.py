"""``LoadAnnotationsBEVDepth``: BEV data augmentation (bda) of the key frame and of all its
ground truth (spec 4.3.3)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.occ_geometry import OccGeometry
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ3d import FLOW_SRC, FLOW_TGT

from .base import BaseTransform
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


def flip_flow_rows(rows: np.ndarray, flip_dx: bool, flip_dy: bool,
                   grid_shape: tuple[int, int, int]) -> np.ndarray:
    """Apply the BEV-augmentation flips to the source and target (z, y, x) voxel indices.

    x -> X - 1 - x if flip_dx and y -> Y - 1 - y if flip_dy (the original hard-codes 199,
    identical for the 200 grid); the floor columns (unused) stay.

    Args:
        rows: (F, 11) integer flow rows (``mmdet3d.structures.occ3d`` FLOW_* columns).
        grid_shape: (X, Y, Z) of the grid the rows index.

    Returns:
        (F, 11) rows of the same dtype, flipped (a copy).
    """
    size_x, size_y = int(grid_shape[0]), int(grid_shape[1])
    rows = np.array(rows, copy=True)
    for flip, size, offset in ((flip_dx, size_x, 2), (flip_dy, size_y, 1)):
        if flip:
            for col in (FLOW_SRC.start + offset, FLOW_TGT.start + offset):
                rows[:, col] = (size - 1 - rows[:, col].astype(np.int64)).astype(rows.dtype)
    return rows


def augment_rays(rays: LidarRays, bda: np.ndarray) -> LidarRays:
    """The rays with the BEV augmentation applied to their origins and directions.

    Computed in float64 and rounded to float32: exact for flips (the paper configs' only
    augmentation); a rotation or scale rounds once more than when it was applied before the
    rays' float32 rounding.

    Args:
        rays: the rays of one sample in the key ego frame (float32).
        bda: (3, 3) BEV augmentation matrix.
    """
    bda = np.asarray(bda, dtype=np.float64)

    def apply(vectors: torch.Tensor) -> torch.Tensor:
        out = np.asarray(vectors, dtype=np.float64) @ bda.T
        return torch.from_numpy(out.astype(np.float32))
    return dataclasses.replace(rays, origins=apply(rays.origins),
                               directions=apply(rays.directions))


@TRANSFORMS.register_module()
class LoadAnnotationsBEVDepth(BaseTransform):
    """Sample the BEV augmentation, set it in ``img_inputs`` and apply it to all ground truth.

    The one place the BEV augmentation acts on ground truth: the Occ3D labels and masks, the
    rays and the flow rows present in ``results`` (run it after the steps that load them). The
    original's detection boxes (``ann_infos``) are unused by OccFlowNet and not built. Only the
    flips act on the Occ3D GT and the flow rows: configs with a non-zero ``rot_lim`` or a scale
    other than 1 would leave them unrotated, as in the original; the rays get the whole matrix.

    Required Keys:
        - img_inputs (:class:`CameraInputs`): from ``PrepareImageInputs``, without a bda.

    Modified Keys:
        - img_inputs: ``bda`` (3, 3) float32 Tensor set.
        - gt_occ (if present): each (X, Y, Z) array with axis 0 reversed if flip_dx, axis 1
          reversed if flip_dy.
        - gt_rays (if present): origins and directions multiplied by the bda
          (:func:`augment_rays`).
        - gt_flow (if present): source and target voxel indices flipped
          (:func:`flip_flow_rows`, in the geometry's label grid).

    Args:
        bda_aug_conf: ``rot_lim`` (lo, hi) degrees, ``scale_lim`` (lo, hi), ``flip_dx_ratio``,
            ``flip_dy_ratio`` (probabilities).
        is_train: sample the augmentation; else identity.
        seed: None draws from numpy's global random state; an int gives a private,
            reproducible generator (every dataloader worker then repeats the same draws: use None
            for training). Defaults to None.
        geometry: the scene geometry (an ``OccGeometry`` or its config dict); its label grid is
            the grid the flow rows index. Needed with ``gt_flow``. Defaults to None.
    """

    def __init__(self, bda_aug_conf: dict, is_train: bool, seed: int | None = None,
                 geometry: OccGeometry | Mapping[str, Any] | None = None) -> None:
        missing = [k for k in ('rot_lim', 'scale_lim', 'flip_dx_ratio', 'flip_dy_ratio')
                   if k not in bda_aug_conf]
        if missing:
            raise KeyError(f'LoadAnnotationsBEVDepth: bda_aug_conf lacks {missing}')
        self.bda_aug_conf = bda_aug_conf
        self.is_train = is_train
        self.rng = make_rng(seed)
        self.geometry = None if geometry is None else OccGeometry.build(geometry)

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
        bda = bda_matrix(**aug)
        results['img_inputs'] = cameras.with_bda(torch.from_numpy(bda))
        if 'gt_occ' in results:
            results['gt_occ'] = {name: self._flip_volume(volume, aug)
                                 for name, volume in results['gt_occ'].items()}
        if 'gt_rays' in results:
            results['gt_rays'] = augment_rays(results['gt_rays'], bda)
        if 'gt_flow' in results:
            if self.geometry is None:
                raise ValueError('LoadAnnotationsBEVDepth needs the geometry to flip gt_flow')
            results['gt_flow'] = flip_flow_rows(results['gt_flow'], aug['flip_dx'],
                                                aug['flip_dy'], self.geometry.label_grid.shape)
        return results

    @staticmethod
    def _flip_volume(volume: np.ndarray, aug: dict) -> np.ndarray:
        if aug['flip_dx']:
            volume = volume[::-1]
        if aug['flip_dy']:
            volume = volume[:, ::-1]
        return np.ascontiguousarray(volume)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(is_train={self.is_train}, bda_aug_conf={self.bda_aug_conf})'
