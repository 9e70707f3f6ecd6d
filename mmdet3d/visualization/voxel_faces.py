"""Exposed faces of the occupied voxels of a label volume, as metric quads in the ego frame.

A face of an occupied voxel is exposed when its neighbour in that direction is not occupied or
lies outside the grid. The exposed faces form the closed surface of the occupied volume: the
only geometry the camera overlay, the 3-D view and the HTML viewer draw. Pure numpy.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmdet3d.structures.occ3d import FREE_LABEL, POINT_CLOUD_RANGE

from .occ_palette import label_colors

#: (6, 3) outward unit normal of each face direction: -x, +x, -y, +y, -z, +z.
FACE_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]],
                        dtype=np.int64)
#: (6,) brightness of each face direction (top brightest, bottom darkest), so that the faces of a
#: block of one class can be told apart.
FACE_SHADE = np.array([0.70, 0.85, 0.62, 0.78, 0.50, 1.0])
#: Two triangles (corner indices) per quad; both keep the quad's winding.
QUAD_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)


def _unit_corners() -> np.ndarray:
    """(6, 4, 3) corners of each face of the unit cube, counter-clockwise seen from outside."""
    corners = np.zeros((6, 4, 3), dtype=np.int64)
    for direction, normal in enumerate(FACE_NORMALS):
        axis = int(np.flatnonzero(normal)[0])
        b, c = (axis + 1) % 3, (axis + 2) % 3
        square = [(0, 0), (1, 0), (1, 1), (0, 1)] if normal[axis] > 0 else \
            [(0, 0), (0, 1), (1, 1), (1, 0)]  # reversed winding for the negative side
        for k, (sb, sc) in enumerate(square):
            corners[direction, k, axis] = int(normal[axis] > 0)
            corners[direction, k, b], corners[direction, k, c] = sb, sc
    return corners


#: (6, 4, 3) int64 corner offsets (in voxels) of each face direction's quad.
UNIT_FACE_CORNERS = _unit_corners()


@dataclass
class VoxelFaces:
    """Exposed faces of a volume.

    Attributes:
        corners: (F, 4, 3) float64 corners in metres (ego frame), counter-clockwise seen from
            outside the voxel (the right-hand normal points out).
        labels: (F,) uint8 label of the voxel each face belongs to.
        directions: (F,) int64 index into :data:`FACE_NORMALS`.
        voxels: (F, 3) int64 (x, y, z) index of that voxel.
    """

    corners: np.ndarray
    labels: np.ndarray
    directions: np.ndarray
    voxels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def colors(self, palette: np.ndarray | None = None) -> np.ndarray:
        """(F, 3) uint8 colour of each face's label, shaded by its direction.

        Args:
            palette: (L, 3) uint8 colour per label; None: the Occ3D palette.
        """
        base = label_colors(self.labels) if palette is None else np.asarray(palette)[self.labels]
        rgb = base.astype(np.float64) * FACE_SHADE[self.directions, None]
        return np.round(rgb).astype(np.uint8)


def occupied_voxels(semantics: np.ndarray, mask: np.ndarray | None = None,
                    free_label: int = FREE_LABEL) -> np.ndarray:
    """(X, Y, Z) bool: non-free voxels inside the visibility ``mask`` (None: all voxels)."""
    semantics = np.asarray(semantics)
    if semantics.ndim != 3:
        raise ValueError(f'semantics must be (X, Y, Z), got shape {semantics.shape}')
    occupied = semantics != free_label
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != semantics.shape:
            raise ValueError(f'mask shape {mask.shape} differs from semantics {semantics.shape}')
        occupied &= mask.astype(bool)
    return occupied


def exposed_faces(semantics: np.ndarray, occupied: np.ndarray,
                  pc_range: Sequence[float] = POINT_CLOUD_RANGE) -> VoxelFaces:
    """Faces of ``occupied`` voxels whose neighbour is not occupied or outside the grid.

    Args:
        semantics: (X, Y, Z) integer labels (the colour of each face).
        occupied: (X, Y, Z) bool voxels to draw (e.g. :func:`occupied_voxels`).
        pc_range: (x0, y0, z0, x1, y1, z1) metric extent of the grid. Defaults to Occ3D's.

    Returns:
        the faces, direction-major, then in C order of their voxels.
    """
    semantics, occupied = np.asarray(semantics), np.asarray(occupied, dtype=bool)
    if semantics.shape != occupied.shape or semantics.ndim != 3:
        raise ValueError(f'semantics {semantics.shape} and occupied {occupied.shape} must be '
                         'the same (X, Y, Z) shape')
    lower = np.asarray(pc_range[:3], dtype=np.float64)
    voxel_size = (np.asarray(pc_range[3:], dtype=np.float64) - lower) / np.asarray(occupied.shape)
    padded = np.pad(occupied, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(3))
    voxels, directions = [], []
    for direction, normal in enumerate(FACE_NORMALS):
        neighbour = padded[tuple(slice(1 + int(n), padded.shape[a] - 1 + int(n))
                                 for a, n in enumerate(normal))]
        index = np.argwhere(padded[inner] & ~neighbour)
        voxels.append(index)
        directions.append(np.full(len(index), direction, dtype=np.int64))
    voxel_index = np.concatenate(voxels)
    direction_index = np.concatenate(directions)
    grid_corners = voxel_index[:, None, :] + UNIT_FACE_CORNERS[direction_index]
    return VoxelFaces(corners=lower + grid_corners * voxel_size,
                      labels=semantics[tuple(voxel_index.T)].astype(np.uint8),
                      directions=direction_index, voxels=voxel_index)


def merge_face_runs(faces: VoxelFaces) -> VoxelFaces:
    """Merge rows of adjacent coplanar faces of one label into long quads (fewer triangles).

    Faces of the same direction and label whose voxels are consecutive along the direction's
    first in-plane axis ``(axis + 1) % 3`` (and equal on the other two axes) become one quad
    spanning the run. The covered surface is unchanged.

    Args:
        faces: the faces (any order).

    Returns:
        one face per run; ``voxels`` holds the run's first voxel.
    """
    if not len(faces):
        return faces
    axis = np.argmax(np.abs(FACE_NORMALS), axis=1)[faces.directions]  # (F,) normal axis
    run_axis = (axis + 1) % 3
    rows = np.arange(len(faces))
    along = faces.voxels[rows, run_axis]
    fixed = faces.voxels.copy()
    fixed[rows, run_axis] = 0
    order = np.lexsort((along, fixed[:, 2], fixed[:, 1], fixed[:, 0], faces.labels,
                        faces.directions))
    key = np.stack([faces.directions, faces.labels, *fixed.T], axis=1)[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.any(key[1:] != key[:-1], axis=1) | (np.diff(along[order]) != 1)
    first = order[starts]
    last = order[np.append(np.flatnonzero(starts)[1:] - 1, len(order) - 1)]
    far_side = UNIT_FACE_CORNERS[faces.directions[first], :, run_axis[first]] == 1  # (R, 4)
    corners = np.where(far_side[..., None], faces.corners[last], faces.corners[first])
    return VoxelFaces(corners, faces.labels[first], faces.directions[first], faces.voxels[first])
