"""The fixed colour palette of the Occ3D labels and bird's-eye-view (BEV) projections.

Pure numpy. Label volumes are indexed (X, Y, Z) like the Occ3D ground truth (spec 0.1):
x forward, y left, z up. BEV images are returned in display orientation: forward (+x) up and
left (+y) on the left, so ``image[r, c]`` shows column ``(X - 1 - r, Y - 1 - c)``.
"""
from __future__ import annotations

import numpy as np

from mmdet3d.structures.occ3d import FREE_LABEL, NUM_CLASSES

#: Label of BEV columns without a single voxel inside the mask (not observed).
UNOBSERVED = 255

#: (18, 3) uint8 RGB colour of each Occ3D label (the palette of the Occ3D/BEVDet-occ
#: visualisations; 'free' is white and drawn transparent where an alpha channel is used).
OCC3D_PALETTE = np.array([
    [0, 0, 0],  # 0 others
    [255, 120, 50],  # 1 barrier
    [255, 192, 203],  # 2 bicycle
    [255, 255, 0],  # 3 bus
    [0, 150, 245],  # 4 car
    [0, 255, 255],  # 5 construction_vehicle
    [200, 180, 0],  # 6 motorcycle
    [255, 0, 0],  # 7 pedestrian
    [255, 240, 150],  # 8 traffic_cone
    [135, 60, 0],  # 9 trailer
    [160, 32, 240],  # 10 truck
    [255, 0, 255],  # 11 driveable_surface
    [139, 137, 137],  # 12 other_flat
    [75, 0, 75],  # 13 sidewalk
    [150, 240, 80],  # 14 terrain
    [230, 230, 250],  # 15 manmade
    [0, 175, 0],  # 16 vegetation
    [255, 255, 255],  # 17 free
], dtype=np.uint8)
#: RGB of BEV columns outside the mask.
UNOBSERVED_COLOR = np.array([215, 215, 215], dtype=np.uint8)


def label_colors(labels: np.ndarray) -> np.ndarray:
    """RGB colours of integer labels.

    Args:
        labels: (...) labels in [0, 17] or ``UNOBSERVED``.

    Returns:
        (..., 3) uint8 RGB.
    """
    labels = np.asarray(labels)
    bad = (labels < 0) | ((labels >= NUM_CLASSES) & (labels != UNOBSERVED))
    if bad.any():
        raise ValueError(f'labels must lie in [0, {NUM_CLASSES - 1}] or be {UNOBSERVED}, got '
                         f'{np.unique(labels[bad])[:5].tolist()}')
    palette = np.concatenate([OCC3D_PALETTE, np.tile(UNOBSERVED_COLOR, (256 - NUM_CLASSES, 1))])
    return palette[labels.astype(np.int64)]


def bev_top_labels(semantics: np.ndarray, mask: np.ndarray | None = None,
                   free_label: int = FREE_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """Label and height index of the highest non-free voxel of every (x, y) column.

    Args:
        semantics: (X, Y, Z) integer labels, ``free_label`` = free.
        mask: (X, Y, Z) bool/0-1 visibility (e.g. ``mask_camera``); voxels outside it are
            ignored. None keeps every voxel. Defaults to None.
        free_label: label of free space. Defaults to 17.

    Returns:
        labels (X, Y) uint8: top label, ``free_label`` for columns with only free visible
        voxels, ``UNOBSERVED`` for columns without visible voxels; height (X, Y) int64: z index
        of the top voxel, -1 where there is none.
    """
    semantics = np.asarray(semantics)
    if semantics.ndim != 3:
        raise ValueError(f'semantics must be (X, Y, Z), got shape {semantics.shape}')
    visible = np.ones(semantics.shape, bool) if mask is None else np.asarray(mask).astype(bool)
    if visible.shape != semantics.shape:
        raise ValueError(f'mask shape {visible.shape} differs from semantics {semantics.shape}')
    occupied = visible & (semantics != free_label)
    num_z = semantics.shape[2]
    top = num_z - 1 - np.argmax(occupied[..., ::-1], axis=2)  # highest occupied z per column
    has_occ = occupied.any(axis=2)
    labels = np.take_along_axis(semantics, top[..., None], axis=2)[..., 0].astype(np.uint8)
    labels[~has_occ] = free_label
    labels[~visible.any(axis=2)] = UNOBSERVED
    height = np.where(has_occ, top, -1).astype(np.int64)
    return labels, height


def to_display(bev: np.ndarray) -> np.ndarray:
    """(X, Y, ...) BEV array -> display orientation (forward up, left on the left)."""
    return np.asarray(bev)[::-1, ::-1]


def bev_image(semantics: np.ndarray, mask: np.ndarray | None = None, shade: bool = True,
              free_label: int = FREE_LABEL, min_brightness: float = 0.65) -> np.ndarray:
    """Top-down RGB image of a label volume: colour of the highest non-free voxel per column.

    Args:
        semantics: (X, Y, Z) integer labels.
        mask: (X, Y, Z) visibility mask; see :func:`bev_top_labels`. Defaults to None.
        shade: darken low voxels (brightness ``min_brightness`` at z index 0, 1 at the top
            layer) so that heights can be told apart. Defaults to True.
        free_label: label of free space. Defaults to 17.
        min_brightness: brightness of the lowest layer when shading. Defaults to 0.65.

    Returns:
        (X, Y, 3) uint8 RGB in display orientation (row 0 = largest x).
    """
    labels, height = bev_top_labels(semantics, mask, free_label)
    rgb = label_colors(labels).astype(np.float32)
    if shade:
        num_z = np.asarray(semantics).shape[2]
        level = np.clip(height, 0, None) / max(num_z - 1, 1)
        factor = np.where(height >= 0, min_brightness + (1 - min_brightness) * level, 1.0)
        rgb *= factor[..., None]
    return to_display(np.round(rgb).astype(np.uint8))


def bev_disagreement(gt: np.ndarray, pred: np.ndarray,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """Fraction of the visible voxels of each column whose predicted label differs from the GT.

    Args:
        gt, pred: (X, Y, Z) labels. mask: (X, Y, Z) visibility or None (all voxels).

    Returns:
        (X, Y) float64 in display orientation; NaN for columns without visible voxels.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'GT shape {gt.shape} and prediction shape {pred.shape} differ')
    visible = np.ones(gt.shape, bool) if mask is None else np.asarray(mask).astype(bool)
    count = visible.sum(axis=2)
    wrong = (visible & (gt != pred)).sum(axis=2)
    with np.errstate(divide='ignore', invalid='ignore'):
        frac = np.where(count > 0, wrong / count, np.nan)
    return to_display(frac)


def present_classes(*label_arrays: np.ndarray) -> list[int]:
    """Sorted Occ3D labels (0..17) occurring in any of the arrays (``UNOBSERVED`` skipped)."""
    found: set[int] = set()
    for labels in label_arrays:
        found.update(int(v) for v in np.unique(np.asarray(labels)) if int(v) < NUM_CLASSES)
    return sorted(found)
