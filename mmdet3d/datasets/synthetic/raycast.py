"""Ray casting against the demo world (ground plane + upright boxes), compiled with numba.

All inputs are in the world frame (metres). A ray is ``origin + t * dir`` with ``dir`` unit
length, so ``t`` is the Euclidean distance to the hit.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from . import classes as C
from .world import CROSS_HALF_WIDTH, GROUND_Z

NO_HIT = -1


@nb.njit(cache=True)
def ground_class(x: float, y: float, bands: np.ndarray, cross_x: float, seg_edges: np.ndarray,
                 seg_kind: np.ndarray) -> int:
    """Lidarseg index of the ground at world (x, y): road, sidewalk, roadside strip, plaza.

    ``bands`` (3,): outer |y| of the road, the sidewalk and the strip (``Layout.bands``).
    """
    ay = abs(y)
    ax = abs(x - cross_x)
    if ay < bands[0] or ax < CROSS_HALF_WIDTH:
        return C.DRIVEABLE
    if ay < bands[1] or ax < CROSS_HALF_WIDTH + bands[1] - bands[0]:
        return C.SIDEWALK
    if ay < bands[2]:
        side = 1 if y > 0 else 0
        return seg_kind[side, np.searchsorted(seg_edges, x)]
    return C.OTHER_FLAT


@nb.njit(cache=True)
def _hit_box(ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
             box: np.ndarray) -> tuple[float, int, float]:
    """Entry distance into an upright box (inf if missed or the origin is inside).

    Returns (t, axis 0..2 of the entry face in the box frame, sign of the outward normal).
    """
    c, s = np.cos(box[6]), np.sin(box[6])
    rx, ry, rz = ox - box[0], oy - box[1], oz - box[2]
    lo = (c * rx + s * ry, -s * rx + c * ry, rz)
    ld = (c * dx + s * dy, -s * dx + c * dy, dz)
    half = (box[3] / 2, box[4] / 2, box[5] / 2)
    t_near, t_far = -np.inf, np.inf
    axis, sign = -1, 0.0
    for i in range(3):
        if abs(ld[i]) < 1e-12:
            if abs(lo[i]) > half[i]:
                return np.inf, -1, 0.0
            continue
        t1 = (-half[i] - lo[i]) / ld[i]
        t2 = (half[i] - lo[i]) / ld[i]
        if t1 > t2:
            t1, t2 = t2, t1
        if t1 > t_near:
            t_near, axis, sign = t1, i, -1.0 if ld[i] > 0 else 1.0
        t_far = min(t_far, t2)
        if t_near > t_far:
            return np.inf, -1, 0.0
    if t_near <= 0.0:
        return np.inf, -1, 0.0
    return t_near, axis, sign


@nb.njit(cache=True)
def box_radii(boxes: np.ndarray) -> np.ndarray:
    """(B,) bounding-sphere radius of each box."""
    return 0.5 * np.sqrt(boxes[:, 3] ** 2 + boxes[:, 4] ** 2 + boxes[:, 5] ** 2)


@nb.njit(cache=True)
def closest_hit(ox: float, oy: float, oz: float, dx: float, dy: float, dz: float, max_t: float,
                boxes: np.ndarray, radius: np.ndarray, candidates: np.ndarray, lo: int,
                hi: int) -> tuple[float, int, int, float]:
    """Nearest hit of one ray with the ground or the boxes ``candidates[lo:hi]``.

    Returns (t, box index or -1 for the ground / -2 for no hit, entry axis, normal sign).
    """
    best, best_b, best_axis, best_sign = max_t, -2, -1, 0.0
    if dz < -1e-9:
        tg = (GROUND_Z - oz) / dz
        if tg < best:
            best, best_b = tg, -1
    for j in range(lo, hi):
        b = candidates[j]
        cx, cy, cz = boxes[b, 0] - ox, boxes[b, 1] - oy, boxes[b, 2] - oz
        tc = cx * dx + cy * dy + cz * dz
        if tc < -radius[b] or tc - radius[b] > best:
            continue
        if cx * cx + cy * cy + cz * cz - tc * tc > radius[b] * radius[b]:
            continue
        tb, axis, sign = _hit_box(ox, oy, oz, dx, dy, dz, boxes[b])
        if tb < best:
            best, best_b, best_axis, best_sign = tb, b, axis, sign
    return best, best_b, best_axis, best_sign


@nb.njit(cache=True)
def hit_normal(box: np.ndarray, axis: int, sign: float) -> tuple[float, float, float]:
    """World-frame outward normal of face ``axis``/``sign`` of an upright box."""
    if axis == 2:
        return 0.0, 0.0, sign
    c, s = np.cos(box[6]), np.sin(box[6])
    if axis == 0:
        return sign * c, sign * s, 0.0
    return -sign * s, sign * c, 0.0


@nb.njit(cache=True, parallel=True)
def cast_rays(origin: np.ndarray, dirs: np.ndarray, max_t: float, boxes: np.ndarray,
              box_label: np.ndarray, box_inst: np.ndarray, bands: np.ndarray, cross_x: float,
              seg_edges: np.ndarray, seg_kind: np.ndarray):
    """Cast rays from one origin against the ground and the boxes.

    Args:
        origin: (3,) float64 world position of the sensor.
        dirs: (R, 3) float64 unit directions, world frame.
        max_t: hits beyond this distance are dropped.
        boxes: (B, 7) float64 ``[cx, cy, cz, l, w, h, yaw]``; label, inst: (B,) int32.
        bands, cross_x, seg_edges, seg_kind: the ground layout (see :func:`ground_class`).

    Returns:
        t (R,) float64 (inf = no hit), label (R,) int32 lidarseg index (-1 = no hit),
        inst (R,) int32 instance id (0 = stuff), normal (R, 3) float64 world frame,
        box (R,) int64 index of the box hit (-1 = ground or no hit).
    """
    n = dirs.shape[0]
    t_out = np.full(n, np.inf)
    lab_out = np.full(n, NO_HIT, dtype=np.int32)
    inst_out = np.zeros(n, dtype=np.int32)
    nrm_out = np.zeros((n, 3))
    box_out = np.full(n, -1, dtype=np.int64)
    radius = box_radii(boxes)
    candidates = np.arange(boxes.shape[0])
    ox, oy, oz = origin[0], origin[1], origin[2]
    for r in nb.prange(n):
        dx, dy, dz = dirs[r, 0], dirs[r, 1], dirs[r, 2]
        t, b, axis, sign = closest_hit(ox, oy, oz, dx, dy, dz, max_t, boxes, radius,
                                       candidates, 0, boxes.shape[0])
        if b == -2:
            continue
        t_out[r] = t
        if b == -1:
            lab_out[r] = ground_class(ox + t * dx, oy + t * dy, bands, cross_x, seg_edges,
                                       seg_kind)
            nrm_out[r, 2] = 1.0
        else:
            lab_out[r] = box_label[b]
            inst_out[r] = box_inst[b]
            box_out[r] = b
            nrm_out[r, 0], nrm_out[r, 1], nrm_out[r, 2] = hit_normal(boxes[b], axis, sign)
    return t_out, lab_out, inst_out, nrm_out, box_out


def cull_boxes(origin: np.ndarray, boxes: np.ndarray, max_t: float) -> np.ndarray:
    """Bool mask (B,) of boxes that a ray of length ``max_t`` from ``origin`` can reach."""
    radius = 0.5 * np.linalg.norm(boxes[:, 3:6], axis=1)
    return np.linalg.norm(boxes[:, :3] - origin, axis=1) < max_t + radius
