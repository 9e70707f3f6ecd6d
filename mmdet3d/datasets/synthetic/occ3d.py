"""Occ3D-nuScenes style ground truth: semantics, ``mask_lidar`` and ``mask_camera``.

Grid (spec 0.1): range [-40, -40, -1, 40, 40, 5.4] m, voxel 0.4 m, shape (200, 200, 16), indexed
[x, y, z] in the ego frame of the keyframe. Semantics hold Occ3D classes 0..16 and 17 = free.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from mmdet3d.structures.occ3d import (FREE_LABEL, GRID_LOWER, GRID_SHAPE, LIDARSEG_TO_OCC3D,
                                      VOXEL_SIZE)
from mmdet3d.structures.pose import rigid_inverse

from . import classes as C
from .raycast import ground_class
from .rigs import SensorCalib
from .world import World

_LOWER = np.array(GRID_LOWER)  # an array, as numba's compiled loops read it
#: Voxel-vs-box overlaps thinner than this (m) do not count.
_OVERLAP_EPS = 1e-4
#: Camera visibility rays per image column; rows follow the aspect ratio.
CAMERA_RAYS_U = 224


@nb.njit(cache=True)
def _voxelize_boxes(boxes: np.ndarray, label: np.ndarray, prio: np.ndarray, out: np.ndarray,
                    out_prio: np.ndarray) -> None:
    """Write the lidarseg label of every voxel that overlaps a box (ego frame) into ``out``."""
    half_v = VOXEL_SIZE / 2 - _OVERLAP_EPS
    nx, ny, nz = out.shape
    for b in range(boxes.shape[0]):
        cx, cy, cz, ln, wd, ht, yaw = boxes[b]
        c, s = np.cos(yaw), np.sin(yaw)
        ex = abs(c) * ln / 2 + abs(s) * wd / 2
        ey = abs(s) * ln / 2 + abs(c) * wd / 2
        x0 = max(int(np.floor((cx - ex - _LOWER[0]) / VOXEL_SIZE)), 0)
        x1 = min(int(np.floor((cx + ex - _LOWER[0]) / VOXEL_SIZE)), nx - 1)
        y0 = max(int(np.floor((cy - ey - _LOWER[1]) / VOXEL_SIZE)), 0)
        y1 = min(int(np.floor((cy + ey - _LOWER[1]) / VOXEL_SIZE)), ny - 1)
        zb, zt = cz - ht / 2, cz + ht / 2
        p = prio[label[b]]
        for ix in range(x0, x1 + 1):
            dx = _LOWER[0] + (ix + 0.5) * VOXEL_SIZE - cx
            for iy in range(y0, y1 + 1):
                dy = _LOWER[1] + (iy + 0.5) * VOXEL_SIZE - cy
                if abs(dx) >= ex + half_v or abs(dy) >= ey + half_v:
                    continue
                if abs(dx * c + dy * s) >= ln / 2 + half_v * (abs(c) + abs(s)):
                    continue
                if abs(-dx * s + dy * c) >= wd / 2 + half_v * (abs(c) + abs(s)):
                    continue
                for iz in range(nz):
                    lo = _LOWER[2] + iz * VOXEL_SIZE
                    if lo + VOXEL_SIZE <= zb + _OVERLAP_EPS or lo >= zt - _OVERLAP_EPS:
                        continue
                    if p > out_prio[ix, iy, iz]:
                        out[ix, iy, iz] = label[b]
                        out_prio[ix, iy, iz] = p


@nb.njit(cache=True)
def _ground_layer(world_from_ego: np.ndarray, bands: np.ndarray, cross_x: float,
                  seg_edges: np.ndarray, seg_kind: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """(nx, ny) int32 ground lidarseg label at the voxel-column centres."""
    out = np.empty((nx, ny), dtype=np.int32)
    for ix in range(nx):
        x = _LOWER[0] + (ix + 0.5) * VOXEL_SIZE
        for iy in range(ny):
            y = _LOWER[1] + (iy + 0.5) * VOXEL_SIZE
            wx = world_from_ego[0, 0] * x + world_from_ego[0, 1] * y + world_from_ego[0, 3]
            wy = world_from_ego[1, 0] * x + world_from_ego[1, 1] * y + world_from_ego[1, 3]
            out[ix, iy] = ground_class(wx, wy, bands, cross_x, seg_edges, seg_kind)
    return out


def semantics(world: World, t: float, world_from_ego: np.ndarray) -> np.ndarray:
    """(200, 200, 16) uint8 Occ3D semantics of the world at time ``t`` in the given ego frame.

    The ground plane fills the lowest layer (it lies in its middle); every box fills each voxel
    it overlaps. Where objects share a voxel, things beat manmade/vegetation beat the ground.
    """
    boxes, label, _ = world.boxes_at(t)
    ego_from_world = rigid_inverse(world_from_ego)
    boxes_ego = boxes.copy()
    boxes_ego[:, :3] = boxes[:, :3] @ ego_from_world[:3, :3].T + ego_from_world[:3, 3]
    boxes_ego[:, 6] = boxes[:, 6] - np.arctan2(world_from_ego[1, 0], world_from_ego[0, 0])
    seg = np.full(GRID_SHAPE, -1, dtype=np.int32)
    prio_grid = np.zeros(GRID_SHAPE, dtype=np.int32)
    seg[:, :, 0] = _ground_layer(world_from_ego, *world.ground_params(), *GRID_SHAPE[:2])
    prio = C.voxel_priority()
    prio_grid[:, :, 0] = prio[seg[:, :, 0]]
    _voxelize_boxes(boxes_ego, label, prio, seg, prio_grid)
    occ = np.full(GRID_SHAPE, FREE_LABEL, dtype=np.uint8)
    occupied = seg >= 0
    occ[occupied] = LIDARSEG_TO_OCC3D[seg[occupied]]
    return occ


@nb.njit(cache=True)
def _axis_setup(o: float, d: float, lo: float, k: int) -> tuple[int, float, float]:
    """DDA step, first boundary crossing and crossing interval along one axis."""
    if d > 1e-12:
        return 1, (lo + (k + 1) * VOXEL_SIZE - o) / d, VOXEL_SIZE / d
    if d < -1e-12:
        return -1, (lo + k * VOXEL_SIZE - o) / d, -VOXEL_SIZE / d
    return 0, np.inf, np.inf


@nb.njit(cache=True)
def _clip_axis(o: float, d: float, lo: float, n: int, t0: float, t1: float
               ) -> tuple[float, float]:
    """Intersect the parameter interval [t0, t1] with the slab of one grid axis."""
    hi = lo + n * VOXEL_SIZE
    if abs(d) < 1e-12:
        if o < lo or o >= hi:
            return 1.0, 0.0
        return t0, t1
    ta, tb = (lo - o) / d, (hi - o) / d
    if ta > tb:
        ta, tb = tb, ta
    return max(t0, ta), min(t1, tb)


@nb.njit(cache=True)
def _start_index(o: float, d: float, t: float, lo: float, n: int) -> int:
    k = int(np.floor((o + t * d - lo) / VOXEL_SIZE))
    return min(max(k, 0), n - 1)


@nb.njit(cache=True)
def _traverse(ox: float, oy: float, oz: float, dx: float, dy: float, dz: float, t_end: float,
              occupied: np.ndarray, stop_at_occupied: bool, mark: np.ndarray) -> None:
    """Mark the voxels that the ray ``o + t * d``, t in [0, t_end], passes through (3-D DDA).

    With ``stop_at_occupied`` the walk ends after the first voxel with ``occupied`` set.
    """
    nx, ny, nz = mark.shape
    t0, t1 = _clip_axis(ox, dx, _LOWER[0], nx, 0.0, t_end)
    t0, t1 = _clip_axis(oy, dy, _LOWER[1], ny, t0, t1)
    t0, t1 = _clip_axis(oz, dz, _LOWER[2], nz, t0, t1)
    if t0 > t1:
        return
    ix = _start_index(ox, dx, t0, _LOWER[0], nx)
    iy = _start_index(oy, dy, t0, _LOWER[1], ny)
    iz = _start_index(oz, dz, t0, _LOWER[2], nz)
    sx, tx, ddx = _axis_setup(ox, dx, _LOWER[0], ix)
    sy, ty, ddy = _axis_setup(oy, dy, _LOWER[1], iy)
    sz, tz, ddz = _axis_setup(oz, dz, _LOWER[2], iz)
    while True:
        mark[ix, iy, iz] = 1
        if stop_at_occupied and occupied[ix, iy, iz]:
            return
        if tx <= ty and tx <= tz:
            if tx > t1:
                return
            ix += sx
            tx += ddx
            if ix < 0 or ix >= nx:
                return
        elif ty <= tz:
            if ty > t1:
                return
            iy += sy
            ty += ddy
            if iy < 0 or iy >= ny:
                return
        else:
            if tz > t1:
                return
            iz += sz
            tz += ddz
            if iz < 0 or iz >= nz:
                return


@nb.njit(cache=True, parallel=True)
def _mark_segments(origins: np.ndarray, ends: np.ndarray, mark: np.ndarray) -> None:
    """Mark voxels on the segments origins[r] -> ends[r] (R, 3), ego frame. Racy writes are
    idempotent (all write 1)."""
    dummy = np.zeros((1, 1, 1), dtype=np.bool_)
    for r in nb.prange(origins.shape[0]):
        _traverse(origins[r, 0], origins[r, 1], origins[r, 2], ends[r, 0] - origins[r, 0],
                  ends[r, 1] - origins[r, 1], ends[r, 2] - origins[r, 2], 1.0, dummy, False,
                  mark)


@nb.njit(cache=True, parallel=True)
def _mark_visible(origin: np.ndarray, dirs: np.ndarray, occupied: np.ndarray,
                  mark: np.ndarray) -> None:
    """Mark voxels seen along unit rays from ``origin`` up to the first occupied voxel."""
    for r in nb.prange(dirs.shape[0]):
        _traverse(origin[0], origin[1], origin[2], dirs[r, 0], dirs[r, 1], dirs[r, 2], 1e3,
                  occupied, True, mark)


def mask_lidar(ego_from_world: np.ndarray,
               scans: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(200, 200, 16) uint8: voxels traversed or hit by the rays of the accumulated ``scans``.

    Args:
        ego_from_world: (4, 4) transform into the keyframe's ego frame.
        scans: (origin (3,), hits (N, 3)) per scan, world frame.
    """
    mark = np.zeros(GRID_SHAPE, dtype=np.uint8)
    for origin, hits in scans:
        o = origin @ ego_from_world[:3, :3].T + ego_from_world[:3, 3]
        ends = hits @ ego_from_world[:3, :3].T + ego_from_world[:3, 3]
        _mark_segments(np.ascontiguousarray(np.broadcast_to(o, ends.shape)), ends, mark)
    return mark


def mask_camera(occ: np.ndarray, calibs: list[SensorCalib], lidar_mask: np.ndarray) -> np.ndarray:
    """(200, 200, 16) uint8: voxels seen from the keyframe cameras up to the first occupied
    voxel along each ray, restricted to ``lidar_mask`` (so it is a subset of it)."""
    occupied = occ != FREE_LABEL
    mark = np.zeros(GRID_SHAPE, dtype=np.uint8)
    for calib in calibs:
        n_u = CAMERA_RAYS_U
        n_v = max(2, round(n_u * calib.height / calib.width))
        u, v = np.meshgrid(np.linspace(0, calib.width, n_u), np.linspace(0, calib.height, n_v))
        pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
        rays = pix @ np.linalg.inv(calib.intrinsic).T @ calib.sensor2ego()[:3, :3].T
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        _mark_visible(np.asarray(calib.translation, dtype=np.float64), rays, occupied, mark)
    return mark & lidar_mask
