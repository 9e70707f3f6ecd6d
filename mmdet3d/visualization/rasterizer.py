"""Pinhole cameras and a numpy z-buffer rasteriser of quads (voxel faces) into label images.

Image convention (OpenCV / nuScenes): the camera frame has x right, y down, z forward; a point
projects to ``(u, v) = (fx x / z + cx, fy y / z + cy)`` and pixel ``(i, j)`` covers
``[i, i + 1) x [j, j + 1)``, so its centre is ``(i + 0.5, j + 0.5)``. A pixel is covered by a
triangle when its centre lies inside the projected triangle (edges included); the nearest
covering surface wins, with depth interpolated exactly (1/z is affine in screen space).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .voxel_faces import QUAD_TRIANGLES, VoxelFaces

#: Candidate (triangle, pixel) pairs per rasterisation chunk; bounds the memory to ~100 MB.
CHUNK_CANDIDATES = 1 << 20


@dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera looking at the ego frame.

    Attributes:
        intrinsic: (3, 3) float64 matrix K of the image of ``width`` x ``height`` pixels.
        ego2cam: (4, 4) float64 rigid transform ego frame -> camera frame (x right, y down,
            z forward).
        width, height: image size in pixels.
    """

    intrinsic: np.ndarray
    ego2cam: np.ndarray
    width: int
    height: int

    @property
    def centre(self) -> np.ndarray:
        """(3,) camera centre in the ego frame."""
        rot, trans = self.ego2cam[:3, :3], self.ego2cam[:3, 3]
        return -rot.T @ trans

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) ego points -> (..., 3) camera-frame points."""
        return np.asarray(points, dtype=np.float64) @ self.ego2cam[:3, :3].T + self.ego2cam[:3, 3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) ego points -> pixel coordinates (..., 2) and camera z-depth (...,)."""
        cam = self.to_camera(points)
        depth = cam[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = cam[..., :2] / depth[..., None] * np.diag(self.intrinsic)[:2] \
                + self.intrinsic[:2, 2]
        return uv, depth

    def resized(self, width: int, height: int) -> PinholeCamera:
        """The same camera for the image resized to ``width`` x ``height`` (pixel edges scale)."""
        scale = np.diag([width / self.width, height / self.height, 1.0])
        return replace(self, intrinsic=scale @ self.intrinsic, width=int(width),
                       height=int(height))


def look_at_camera(eye: Sequence[float], target: Sequence[float], fov_x_deg: float,
                   width: int, height: int) -> PinholeCamera:
    """A camera at ``eye`` looking at ``target`` (ego frame, z up), square pixels.

    Args:
        eye, target: (3,) positions (m); must not be vertically aligned.
        fov_x_deg: horizontal field of view (degrees).
        width, height: image size (pixels).
    """
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f'look_at_camera: eye {eye} and target {target} are vertically aligned')
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    ego2cam = np.eye(4)
    ego2cam[:3, :3] = np.stack([right, down, forward])
    ego2cam[:3, 3] = -ego2cam[:3, :3] @ eye
    focal = width / 2 / np.tan(np.radians(fov_x_deg) / 2)
    intrinsic = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    return PinholeCamera(intrinsic, ego2cam, int(width), int(height))


@dataclass
class Raster:
    """What each pixel of a rasterised image sees.

    Attributes:
        face: (H, W) int64 index of the nearest face, -1 where no face covers the pixel.
        depth: (H, W) float64 camera z-depth of that face at the pixel centre (m), inf elsewhere.
    """

    face: np.ndarray
    depth: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """(H, W) bool pixels that see a face."""
        return self.face >= 0


def _pixel_candidates(lo: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangle index and pixel (i, j) of every pixel in each triangle's bounding box.

    Args:
        lo: (T, 2) int64 first pixel (i, j) of each box. span: (T, 2) int64 box size (>= 1).

    Returns:
        triangle (C,) int64 and pixel (C, 2) int64, C = sum of the box areas.
    """
    counts = span[:, 0] * span[:, 1]
    triangle = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    local = np.arange(int(counts.sum())) - starts[triangle]
    width = span[triangle, 0]
    pixel = lo[triangle] + np.stack([local % width, local // width], axis=1)
    return triangle, pixel


def rasterize_quads(corners: np.ndarray, camera: PinholeCamera, near: float = 0.1,
                    cull_back_faces: bool = True) -> Raster:
    """Z-buffer rasterisation of quads: which quad each pixel sees, and at what depth.

    Quads with a corner closer than ``near`` (or behind the camera) are dropped, so a surface
    that reaches past the camera's near plane leaves a hole at the image border.

    Args:
        corners: (F, 4, 3) planar quads in the ego frame, counter-clockwise seen from their front
            side (see :class:`~.voxel_faces.VoxelFaces`).
        camera: the camera.
        near: minimum camera z-depth of every corner (m). Defaults to 0.1.
        cull_back_faces: skip quads seen from behind (exact for closed surfaces such as the
            exposed faces of a volume, and twice as fast). Defaults to True.

    Returns:
        the :class:`Raster` of the camera's image; ``face`` indexes ``corners``.
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 3)
    height, width = camera.height, camera.width
    zbuffer = np.full(height * width, np.inf)
    face_buffer = np.full(height * width, -1, dtype=np.int64)
    uv, depth = camera.project(corners)  # (F, 4, 2), (F, 4)
    keep = np.all(depth > near, axis=1)
    keep &= (uv[..., 0].max(1) >= 0.5) & (uv[..., 0].min(1) <= width - 0.5)
    keep &= (uv[..., 1].max(1) >= 0.5) & (uv[..., 1].min(1) <= height - 0.5)
    if cull_back_faces:
        normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        keep &= np.einsum('fk,fk->f', normal, camera.centre - corners[:, 0]) > 0
    quads = np.flatnonzero(keep)
    tri_quad = np.repeat(quads, len(QUAD_TRIANGLES))
    tri_corner = np.tile(QUAD_TRIANGLES, (len(quads), 1))  # (T, 3)
    tri_uv = uv[tri_quad[:, None], tri_corner]  # (T, 3, 2)
    tri_inv_depth = 1.0 / depth[tri_quad[:, None], tri_corner]  # (T, 3)
    edge1, edge2 = tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]
    area = edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0]  # twice the signed area
    # pixel centres i + 0.5 inside [min, max] -> i in [ceil(min - 0.5), floor(max - 0.5)]
    lo = np.clip(np.ceil(tri_uv.min(1) - 0.5), 0, None).astype(np.int64)
    hi = np.minimum(np.floor(tri_uv.max(1) - 0.5), [width - 1, height - 1]).astype(np.int64)
    span = hi - lo + 1
    valid = (np.abs(area) > 1e-12) & np.all(span > 0, axis=1)
    tris = np.flatnonzero(valid)
    counts = span[tris, 0] * span[tris, 1]
    # chunks of whole triangles with about CHUNK_CANDIDATES pixel candidates each
    chunk_of = np.cumsum(counts) // CHUNK_CANDIDATES
    bounds = np.searchsorted(chunk_of, np.unique(chunk_of), side='right')
    start = 0
    for stop in bounds:  # loop over chunks of triangles, each vectorised
        chunk = tris[start:stop]
        start = stop
        local, pixel = _pixel_candidates(lo[chunk], span[chunk])
        tri = chunk[local]
        centre = pixel + 0.5
        rel = centre - tri_uv[tri, 0]
        # barycentric weights of corners 1 and 2 (Cramer's rule), then corner 0
        w1 = (rel[:, 0] * edge2[tri, 1] - rel[:, 1] * edge2[tri, 0]) / area[tri]
        w2 = (edge1[tri, 0] * rel[:, 1] - edge1[tri, 1] * rel[:, 0]) / area[tri]
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        inv_depth = (w0 * tri_inv_depth[tri, 0] + w1 * tri_inv_depth[tri, 1]
                     + w2 * tri_inv_depth[tri, 2])[inside]
        flat = (pixel[inside, 1] * width + pixel[inside, 0])
        pixel_depth = 1.0 / inv_depth
        np.minimum.at(zbuffer, flat, pixel_depth)
        wins = pixel_depth <= zbuffer[flat]
        face_buffer[flat[wins]] = tri_quad[tri[inside][wins]]
    return Raster(face=face_buffer.reshape(height, width), depth=zbuffer.reshape(height, width))


def render_faces(faces: VoxelFaces, camera: PinholeCamera,
                 palette: np.ndarray | None = None) -> tuple[np.ndarray, Raster]:
    """Rasterise voxel faces and colour each pixel by its face (class colour, shaded).

    Args:
        faces: the exposed faces to draw.
        camera: the camera.
        palette: (L, 3) uint8 colour per label; None: the Occ3D palette.

    Returns:
        rgb (H, W, 3) uint8 (black where ``raster.covered`` is False) and the raster.
    """
    raster = rasterize_quads(faces.corners, camera)
    colors = np.concatenate([faces.colors(palette), np.zeros((1, 3), np.uint8)])
    return colors[raster.face], raster  # face -1 picks the appended black
