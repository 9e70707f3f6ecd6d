"""Rays cast per second by RayIoU's caster, and the extrapolated time of the Occ3D val split.

Casts SparseOcc's 14,040 LiDAR rays from ``--origins`` origins through Occ3D-sized volumes
(200x200x16): the demo world's GT volumes when ``--gt-dir`` holds ``labels.npz`` files (default
``data/demo/gts``), else a synthetic street (ground layer, walls, random boxes). Each volume is
cast twice per sample in the metric (prediction and GT), so the split's time is
``samples x origins x 14,040 x 2 / (rays per second)``; the Occ3D-nuScenes val split has 6019
samples with at most 8 origins each. Reports the CPU numba caster (what ``cast_rays`` uses on
CPU, the baseline of the ratios), the vectorised torch caster on CPU at ``--threads``, and the
torch caster on a CUDA device where one is present.

Usage:
    python tools/benchmarks/bench_ray_iou.py [--threads 2] [--origins 8] [--volumes 4]
        [--gt-dir data/demo/gts] [--repeats 2]
"""
from __future__ import annotations

import argparse
import glob
import os.path as osp
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmdet3d.evaluation.functional.ray_iou import cast_rays, lidar_ray_directions  # noqa: E402
from mmdet3d.formats.occ3d_labels import load_occ_gt  # noqa: E402
from mmdet3d.structures.occ3d import FREE_LABEL, GRID_SHAPE  # noqa: E402

VAL_SAMPLES = 6019


def synthetic_street(seed: int) -> np.ndarray:
    """(200, 200, 16) labels: ground, two walls along x, random boxes."""
    rng = np.random.default_rng(seed)
    labels = np.full(GRID_SHAPE, FREE_LABEL, np.uint8)
    labels[:, :, 2] = 11
    labels[:, 40:45, 3:12] = 15
    labels[:, 155:160, 3:12] = 15
    for _ in range(30):
        x, y = rng.integers(10, 185, 2)
        labels[x:x + 10, y:y + 5, 3:7] = rng.integers(1, 11)
    return labels


def volumes(gt_dir: str, count: int) -> list[np.ndarray]:
    files = sorted(glob.glob(osp.join(gt_dir, '*', '*', 'labels.npz')))[:count]
    if files:
        return [load_occ_gt(f)['semantics'] for f in files]
    return [synthetic_street(seed) for seed in range(count)]


def rays_per_second(labels: list[np.ndarray], origins: torch.Tensor, device: str, impl: str,
                    repeats: int) -> float:
    directions = torch.as_tensor(lidar_ray_directions(), dtype=torch.float64, device=device)
    ray_origins = origins.to(device).repeat_interleave(len(directions), dim=0)
    ray_directions = directions.repeat(len(origins), 1)
    occupied = [torch.as_tensor(v != FREE_LABEL, device=device) for v in labels]
    cast_rays(occupied[0], ray_origins, ray_directions, impl=impl)  # warm-up (numba compiles)
    best = float('inf')
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        for volume in occupied:
            cast_rays(volume, ray_origins, ray_directions, impl=impl)
        if device == 'cuda':
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(occupied) * len(ray_origins) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--origins', type=int, default=8)
    parser.add_argument('--volumes', type=int, default=4)
    parser.add_argument('--gt-dir', default='data/demo/gts')
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    labels = volumes(args.gt_dir, args.volumes)
    # LiDAR-height origins spread over the central 60 m, as a driven scene gives them
    xs = np.linspace(-30.0, 30.0, args.origins)
    origins = torch.as_tensor(np.stack([xs, np.zeros_like(xs), np.full_like(xs, 1.84)], 1))
    runs = [('cpu', 'numba', f'CPU numba, {args.threads} threads'),
            ('cpu', 'torch', f'CPU torch, {args.threads} threads')]
    if torch.cuda.is_available():
        runs.append(('cuda', 'torch', f'{torch.cuda.get_device_name()} torch'))
    source = 'demo GT' if glob.glob(osp.join(args.gt_dir, '*')) else 'synthetic'
    print(f'{len(labels)} volumes ({source}), '
          f'{args.origins} origins x 14040 rays each')
    baseline = None
    for device, impl, name in runs:
        rate = rays_per_second(labels, origins, device, impl, args.repeats)
        baseline = baseline or rate
        split = VAL_SAMPLES * args.origins * 14040 * 2 / rate
        print(f'{name}: {rate / 1e6:.3f} M rays/s ({rate / baseline:.3f} x CPU numba); '
              f'Occ3D val split ({VAL_SAMPLES} samples): {split / 60:.1f} min')


if __name__ == '__main__':
    main()
