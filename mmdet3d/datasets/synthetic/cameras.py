"""Camera images of the demo world, rendered by ray casting one ray per pixel centre.

Colour model (so that semantics and depth are learnable from pixels): a fixed base colour per
class (``classes.CLASS_COLORS``), Lambert shading by the surface normal under a fixed sun,
multiplicative value noise anchored to world cells (0.3 m and 1.2 m), and exponential distance fog
towards the horizon colour. Rays without a hit within ``MAX_DEPTH`` show a sky gradient.

Speed: boxes are binned into 16x16-pixel tiles by their projected corners, so a pixel only tests
the boxes whose image rectangle covers its tile.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from mmdet3d.structures.pose import rigid_inverse

from .classes import color_table
from .raycast import box_radii, closest_hit, cull_boxes, ground_class, hit_normal
from .rigs import SensorCalib
from .world import World

MAX_DEPTH = 150.0
FOG_DISTANCE = 220.0
TILE = 16
_NEAR = 0.05
_SUN = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])
_HORIZON = np.array([205.0, 215.0, 230.0])
_ZENITH = np.array([110.0, 150.0, 215.0])


@nb.njit(cache=True)
def _box_tiles(boxes: np.ndarray, cam_from_world: np.ndarray, k: np.ndarray, width: int,
               height: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin boxes into image tiles by the bounding rectangle of their projected corners.

    Returns CSR lists: tile_start (T + 1,) and tile_boxes (M,) box indices, T = tiles row-major.
    """
    ntx, nty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    rects = np.full((boxes.shape[0], 4), -1, dtype=np.int64)
    for b in range(boxes.shape[0]):
        cx, cy, cz, ln, wd, ht, yaw = boxes[b]
        c, s = np.cos(yaw), np.sin(yaw)
        u0, v0, u1, v1 = np.inf, np.inf, -np.inf, -np.inf
        n_front, n_behind = 0, 0
        for corner in range(8):
            a = ln / 2 if corner & 1 else -ln / 2
            bb = wd / 2 if corner & 2 else -wd / 2
            z = cz + (ht / 2 if corner & 4 else -ht / 2)
            x, y = cx + c * a - s * bb, cy + s * a + c * bb
            m = cam_from_world
            px = m[0, 0] * x + m[0, 1] * y + m[0, 2] * z + m[0, 3]
            py = m[1, 0] * x + m[1, 1] * y + m[1, 2] * z + m[1, 3]
            pz = m[2, 0] * x + m[2, 1] * y + m[2, 2] * z + m[2, 3]
            if pz <= _NEAR:
                n_behind += 1
                continue
            n_front += 1
            u = k[0, 0] * px / pz + k[0, 2]
            v = k[1, 1] * py / pz + k[1, 2]
            u0, v0, u1, v1 = min(u0, u), min(v0, v), max(u1, u), max(v1, v)
        if n_front == 0:
            continue
        if n_behind > 0:
            rects[b] = 0, 0, ntx - 1, nty - 1
            continue
        if u1 < 0 or v1 < 0 or u0 >= width or v0 >= height:
            continue
        rects[b, 0] = max(int(np.floor(u0 - 1)), 0) // TILE
        rects[b, 1] = max(int(np.floor(v0 - 1)), 0) // TILE
        rects[b, 2] = min(int(np.ceil(u1 + 1)), width - 1) // TILE
        rects[b, 3] = min(int(np.ceil(v1 + 1)), height - 1) // TILE
    counts = np.zeros(ntx * nty + 1, dtype=np.int64)
    for b in range(boxes.shape[0]):
        if rects[b, 0] < 0:
            continue
        for ty in range(rects[b, 1], rects[b, 3] + 1):
            for tx in range(rects[b, 0], rects[b, 2] + 1):
                counts[ty * ntx + tx + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    tile_boxes = np.empty(start[-1], dtype=np.int64)
    for b in range(boxes.shape[0]):
        if rects[b, 0] < 0:
            continue
        for ty in range(rects[b, 1], rects[b, 3] + 1):
            for tx in range(rects[b, 0], rects[b, 2] + 1):
                tile_boxes[fill[ty * ntx + tx]] = b
                fill[ty * ntx + tx] += 1
    return start, tile_boxes


@nb.njit(cache=True)
def _cell_noise(x: float, y: float, z: float, cell: float) -> float:
    """Deterministic value noise in [-1, 1] per cubic world cell of size ``cell`` (m)."""
    h = np.uint64(np.int64(np.floor(x / cell)) + 1 << 20) * np.uint64(73856093)
    h ^= np.uint64(np.int64(np.floor(y / cell)) + 1 << 20) * np.uint64(19349663)
    h ^= np.uint64(np.int64(np.floor(z / cell)) + 1 << 20) * np.uint64(83492791)
    h ^= h >> np.uint64(13)
    h *= np.uint64(1274126177)
    h ^= h >> np.uint64(16)
    return float(h & np.uint64(0xFFFF)) / 32767.5 - 1.0


@nb.njit(cache=True, parallel=True)
def _render(origin: np.ndarray, world_from_cam: np.ndarray, k_inv: np.ndarray, width: int,
            height: int, boxes: np.ndarray, box_label: np.ndarray, tile_start: np.ndarray,
            tile_boxes: np.ndarray, bands: np.ndarray, cross_x: float, seg_edges: np.ndarray,
            seg_kind: np.ndarray, colors: np.ndarray, sun: np.ndarray, horizon: np.ndarray,
            zenith: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image; see the module docstring for the colour model."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    radius = box_radii(boxes)
    ntx = (width + TILE - 1) // TILE
    n_tiles = ntx * ((height + TILE - 1) // TILE)
    # ray through pixel (u, v): d = m @ (u + 0.5, v + 0.5, 1) with m = R_world_cam @ K^-1
    m = np.ascontiguousarray(world_from_cam[:3, :3]) @ k_inv
    ox, oy, oz = origin[0], origin[1], origin[2]
    for tile in nb.prange(n_tiles):
        tx, ty = tile % ntx, tile // ntx
        lo, hi = tile_start[tile], tile_start[tile + 1]
        for v in range(ty * TILE, min((ty + 1) * TILE, height)):
            for u in range(tx * TILE, min((tx + 1) * TILE, width)):
                pu, pv = u + 0.5, v + 0.5
                dx = m[0, 0] * pu + m[0, 1] * pv + m[0, 2]
                dy = m[1, 0] * pu + m[1, 1] * pv + m[1, 2]
                dz = m[2, 0] * pu + m[2, 1] * pv + m[2, 2]
                norm = np.sqrt(dx * dx + dy * dy + dz * dz)
                dx, dy, dz = dx / norm, dy / norm, dz / norm
                t, b, axis, sign = closest_hit(ox, oy, oz, dx, dy, dz, MAX_DEPTH, boxes,
                                               radius, tile_boxes, lo, hi)
                if b == -2:
                    w = min(max(dz * 3.0, 0.0), 1.0)
                    for ch in range(3):
                        val = horizon[ch] * (1 - w) + zenith[ch] * w
                        img[v, u, ch] = np.uint8(min(max(np.round(val), 0.0), 255.0))
                else:
                    x, y, z = ox + t * dx, oy + t * dy, oz + t * dz
                    if b == -1:
                        lab = ground_class(x, y, bands, cross_x, seg_edges, seg_kind)
                        nx, ny, nz = 0.0, 0.0, 1.0
                    else:
                        lab = box_label[b]
                        nx, ny, nz = hit_normal(boxes[b], axis, sign)
                    lam = max(nx * sun[0] + ny * sun[1] + nz * sun[2], 0.0)
                    shade = (0.5 + 0.5 * lam) * (1.0 + 0.07 * _cell_noise(x, y, z, 0.3)
                                                  + 0.05 * _cell_noise(x, y, z, 1.2))
                    fog = np.exp(-t / FOG_DISTANCE)
                    for ch in range(3):
                        val = colors[lab, ch] * shade * fog + horizon[ch] * (1 - fog)
                        img[v, u, ch] = np.uint8(min(max(np.round(val), 0.0), 255.0))
    return img


def render(world: World, t: float, calib: SensorCalib) -> np.ndarray:
    """Render camera ``calib`` at scene time ``t`` (s); returns (H, W, 3) uint8 RGB."""
    boxes, label, _ = world.boxes_at(t)
    world_from_cam = world.ego_pose(t) @ calib.sensor2ego()
    origin = world_from_cam[:3, 3].copy()
    keep = cull_boxes(origin, boxes, MAX_DEPTH)
    boxes, label = np.ascontiguousarray(boxes[keep]), label[keep]
    start, tile_boxes = _box_tiles(boxes, rigid_inverse(world_from_cam), calib.intrinsic,
                                   calib.width, calib.height)
    return _render(origin, world_from_cam, np.linalg.inv(calib.intrinsic), calib.width,
                   calib.height, boxes, label, start, tile_boxes, *world.ground_params(),
                   color_table(), _SUN, _HORIZON, _ZENITH)
