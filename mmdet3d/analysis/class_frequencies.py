"""Per-class voxel counts of a split's Occ3D ground truth: the input of the render losses'
class weights (``ClassBalancedLogWeights(class_frequencies=...)``,
``class_balanced_log_weights``).

The original's table counts Occ3D-nuScenes; a model trained on other data (e.g. the demo world)
weights its rays by that data's own counts. Counting only camera-visible voxels (``'camera'``,
the default) keeps the inside of buildings and of other solid objects, which no ray sees, from
making their surface classes look common.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.formats.occ3d_labels import info_occ_path, load_occ_gt
from mmdet3d.structures.occ3d import NUM_CLASSES, NUM_SEMANTIC_CLASSES

MASKS = ('camera', 'lidar', 'none')


def class_voxel_counts(ann_file: str,
                       path_prefix: str | None = None,
                       mask: str = 'camera',
                       progress: Callable[[Iterable], Iterable] = iter) -> tuple[np.ndarray, int]:
    """Voxels of each semantic class over every sample of a split.

    Args:
        ann_file: info pkl of the split (its infos' ``occ_path``).
        path_prefix: joined to relative ``occ_path``; None keeps them relative to the working
            directory. Defaults to None.
        mask: count the voxels of Occ3D's ``mask_camera`` (``'camera'``), ``mask_lidar``
            (``'lidar'``) or all of them (``'none'``). Defaults to ``'camera'``.
        progress: wraps the iteration over the samples (e.g. ``tqdm``). Defaults to ``iter``.

    Returns:
        (17,) int64 counts of the classes 0-16 and the number of samples counted.

    Raises:
        ValueError: an unknown ``mask`` or a split without samples.
    """
    if mask not in MASKS:
        raise ValueError(f'mask must be one of {MASKS}, got {mask!r}')
    infos, _ = load_infos(ann_file)
    if not infos:
        raise ValueError(f'{ann_file} holds no samples')
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)  # free counted, then dropped
    for info in progress(infos):
        gt = load_occ_gt(info_occ_path(info, path_prefix, ann_file), info.get('token'))
        labels = gt['semantics'] if mask == 'none' else gt['semantics'][gt[f'mask_{mask}'] > 0]
        counts += np.bincount(labels.ravel(), minlength=NUM_CLASSES)
    return counts[:NUM_SEMANTIC_CLASSES], len(infos)
