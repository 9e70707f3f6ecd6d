"""3-D view of occupancy: the visible voxels from a virtual camera, GT | prediction | disagreement.

The exposed voxel faces are rasterised with the z-buffer of :mod:`.rasterizer` from a pinhole
camera placed by :class:`Viewpoint` (default: behind and above the ego vehicle, looking forward
and down). The ego vehicle is drawn as a dark box at the origin.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmdet3d.structures.occ3d import FREE_LABEL, POINT_CLOUD_RANGE

from .image_panels import class_legend, legend_strip, stack, text_bar, titled
from .occ_palette import OCC3D_PALETTE, present_classes
from .rasterizer import PinholeCamera, look_at_camera, rasterize_quads
from .voxel_faces import VoxelFaces, exposed_faces, occupied_voxels

#: Background of the 3-D view (light sky grey).
BACKGROUND = np.array([246, 246, 248], dtype=np.uint8)
#: The ego vehicle box (x0, y0, z0, x1, y1, z1) in metres (a nuScenes car around the origin).
EGO_BOX = (-2.0, -0.9, -1.0, 2.0, 0.9, 0.6)
EGO_COLOR = np.array([40, 40, 40], dtype=np.uint8)

#: Disagreement codes of :func:`disagreement_volume` (0 = agreement or not visible).
WRONG_CLASS, FALSE_OCCUPIED, MISSED = 1, 2, 3
#: (4, 3) uint8 colour of each disagreement code.
DISAGREEMENT_PALETTE = np.array([[255, 255, 255], [220, 30, 30], [255, 160, 0], [40, 90, 230]],
                                dtype=np.uint8)
DISAGREEMENT_NAMES = ('', 'wrong class', 'predicted occupied, GT free',
                      'GT occupied, predicted free')


@dataclass(frozen=True)
class Viewpoint:
    """A virtual camera in the ego frame (metres, x forward, y left, z up).

    Attributes:
        eye: camera position. Defaults to 44 m behind and 30 m above the ego vehicle.
        target: the point looked at. Defaults to 8 m ahead of the ego vehicle, on the ground.
        fov_x_deg: horizontal field of view. Defaults to 62 degrees.
    """

    eye: tuple[float, float, float] = (-44.0, 0.0, 30.0)
    target: tuple[float, float, float] = (8.0, 0.0, -1.0)
    fov_x_deg: float = 62.0

    def camera(self, width: int, height: int) -> PinholeCamera:
        """The pinhole camera of this viewpoint for a ``width`` x ``height`` image."""
        return look_at_camera(self.eye, self.target, self.fov_x_deg, width, height)


def _ego_faces(label: int) -> VoxelFaces:
    """The faces of the ego vehicle box, labelled ``label``."""
    one = np.ones((1, 1, 1), dtype=bool)
    return exposed_faces(np.full((1, 1, 1), label, np.uint8), one, EGO_BOX)


def _concatenate(parts: Sequence[VoxelFaces]) -> VoxelFaces:
    return VoxelFaces(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ('corners', 'labels', 'directions', 'voxels')))


def render_voxel_view(faces: VoxelFaces, camera: PinholeCamera,
                      palette: np.ndarray = OCC3D_PALETTE) -> tuple[np.ndarray, np.ndarray]:
    """Draw faces and the ego vehicle on the background.

    Args:
        faces: exposed faces (labels index ``palette``).
        camera: the virtual camera.
        palette: (L, 3) uint8 colour per label. Defaults to the Occ3D palette.

    Returns:
        rgb (H, W, 3) uint8 and the (H, W) int64 label seen by each pixel (-1: background,
        ``len(palette)``: the ego vehicle).
    """
    palette = np.concatenate([np.asarray(palette, np.uint8), EGO_COLOR[None]])
    ego_label = len(palette) - 1
    scene = _concatenate([faces, _ego_faces(ego_label)])
    raster = rasterize_quads(scene.corners, camera)
    colors = np.concatenate([scene.colors(palette), BACKGROUND[None]])
    labels = np.concatenate([scene.labels.astype(np.int64), [-1]])
    return colors[raster.face], labels[raster.face]


def disagreement_volume(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None,
                        free_label: int = FREE_LABEL) -> np.ndarray:
    """Where and how the prediction differs from the GT, per voxel.

    Args:
        gt, pred: (X, Y, Z) labels. mask: (X, Y, Z) visibility (None: all voxels).
        free_label: label of free space. Defaults to 17.

    Returns:
        (X, Y, Z) uint8: :data:`WRONG_CLASS` (both occupied, labels differ),
        :data:`FALSE_OCCUPIED` (GT free), :data:`MISSED` (prediction free), 0 elsewhere and
        outside the mask.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'GT shape {gt.shape} and prediction shape {pred.shape} differ')
    gt_occ, pred_occ = gt != free_label, pred != free_label
    codes = np.zeros(gt.shape, np.uint8)
    codes[gt_occ & pred_occ & (gt != pred)] = WRONG_CLASS
    codes[pred_occ & ~gt_occ] = FALSE_OCCUPIED
    codes[gt_occ & ~pred_occ] = MISSED
    if mask is not None:
        codes[~np.asarray(mask).astype(bool)] = 0
    return codes


def voxel_view_image(pred: np.ndarray, gt: np.ndarray | None = None,
                     mask: np.ndarray | None = None, title: str = '', mask_name: str = 'camera',
                     viewpoint: Viewpoint = Viewpoint(),
                     pc_range: Sequence[float] = POINT_CLOUD_RANGE,
                     panel_size: tuple[int, int] = (640, 420)) -> np.ndarray:
    """GT | prediction | disagreement seen from ``viewpoint`` (prediction only without GT).

    Args:
        pred: (X, Y, Z) predicted labels. gt: (X, Y, Z) GT labels or None. Defaults to None.
        mask: (X, Y, Z) visibility applied to all panels, or None. Defaults to None.
        title: text above the panels (e.g. scene and token). Defaults to ''.
        mask_name: name of the mask in the titles. Defaults to 'camera'.
        viewpoint: the virtual camera. Defaults to behind and above the ego vehicle.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
        panel_size: (width, height) of each panel in pixels. Defaults to (640, 420).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    camera = viewpoint.camera(*panel_size)
    masked = '' if mask is None else f' ({mask_name} mask)'
    layers = {} if gt is None else {f'ground truth{masked}': gt}
    layers[f'prediction{masked}'] = pred
    panels, shown = [], []
    for name, volume in layers.items():
        rgb, seen = render_voxel_view(
            exposed_faces(volume, occupied_voxels(volume, mask), pc_range), camera)
        panels.append(titled(rgb, name))
        shown.append(seen[(seen >= 0) & (seen < len(OCC3D_PALETTE))])
    if gt is not None:
        codes = disagreement_volume(gt, pred, mask)
        rgb, _ = render_voxel_view(exposed_faces(codes, codes > 0, pc_range), camera,
                                   DISAGREEMENT_PALETTE)
        panels.append(titled(rgb, f'disagreement{masked}'))
    body = stack(panels, axis=1)
    width = body.shape[1]
    parts = [body, class_legend(present_classes(*shown), width)]
    extra = [(EGO_COLOR, 'ego vehicle')]
    if gt is not None:
        extra = [(DISAGREEMENT_PALETTE[c], f'disagreement: {DISAGREEMENT_NAMES[c]}')
                 for c in (WRONG_CLASS, FALSE_OCCUPIED, MISSED)] + extra
    parts.append(legend_strip(extra, width))
    if title:
        parts.insert(0, text_bar(title, width, 16))
    return stack(parts, axis=0, gap=0)
