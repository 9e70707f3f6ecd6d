"""Benchmark the renderer's per-ray-gather lookup against the original's re-batched lookup.

Both run the whole ``VolumeRenderer`` (flow variant: proposal + importance sampling, density and
semantic lookups, weights) and the class-weighted render losses of the paper configs with their
backward on random volumes; only the trilinear lookup differs.
The original algorithm builds a zero (V, R, S, 3) grid (V = B*T volumes), puts each ray's points in
its own volume's slot, runs ``grid_sample`` over all V volumes and gathers each ray's row; the
per-ray gather reads only the ray's own volume. Each measurement runs in a fresh subprocess so that
the peak resident memory (ru_maxrss) above the process's baseline can be reported; the child runs
with a fixed glibc mmap threshold so that freed tensors leave the resident set.

Usage:
    python tools/benchmarks/bench_renderer.py [--rays 1024 4096] [--batch 2] [--frames 7]
        [--grid 100 100 16] [--samples 100] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmdet3d.models.losses.class_weights import ClassBalancedLogWeights  # noqa: E402
from mmdet3d.models.losses.render_losses import (RenderDepthLoss,  # noqa: E402
                                                 RenderSemanticLoss)
from mmdet3d.models.rendering import volume_renderer  # noqa: E402
from mmdet3d.models.rendering.overlaid_volumes import OverlaidVolumes  # noqa: E402
from mmdet3d.models.rendering.ray_batching import flatten_rays  # noqa: E402
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer  # noqa: E402
from mmdet3d.structures.lidar_rays import LidarRays  # noqa: E402
from mmdet3d.testing.geometry import occ3d_geometry  # noqa: E402


def rebatched_lookup(volumes: torch.Tensor | OverlaidVolumes, slots: torch.Tensor,
                     points: torch.Tensor, pc_range, align_corners: bool = True) -> torch.Tensor:
    """The original's algorithm: one zero grid per volume holding every ray, then a gather.

    volumes (V, Z, Y, X, C) (per-frame flow volumes as the original's dense copies), slots (R,),
    points (R, S, 3) -> (R, S, C).
    """
    if isinstance(volumes, OverlaidVolumes):
        volumes = volumes.dense()
    num_vol = volumes.shape[0]
    num_rays, num_samples, _ = points.shape
    lo = torch.as_tensor(pc_range[:3], dtype=points.dtype)
    hi = torch.as_tensor(pc_range[3:], dtype=points.dtype)
    normalised = (points - lo) / (hi - lo) * 2 - 1  # (R, S, 3)
    grid = points.new_zeros(num_vol, num_rays, num_samples, 3)
    grid[slots, torch.arange(num_rays)] = normalised
    sampled = F.grid_sample(volumes.permute(0, 4, 1, 2, 3),  # (V, Z, Y, X, C) -> (V, C, Z, Y, X)
                            grid[:, None], mode='bilinear', padding_mode='zeros',
                            align_corners=align_corners)  # (V, C, 1, R, S)
    picked = sampled[slots, :, 0, torch.arange(num_rays)]  # (R, C, S)
    return picked.permute(0, 2, 1)  # (R, C, S) -> (R, S, C)


def run_once(args: argparse.Namespace, impl: str, num_rays: int) -> dict:
    """Render ``num_rays`` rays ``args.repeats`` times; rays/s and peak RSS above baseline."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    size_x, size_y, size_z = args.grid
    batch, frames = args.batch, args.frames
    density = torch.rand(batch, size_z, size_y, size_x, 1) ** 4
    density.requires_grad_()
    semantics = torch.randn(batch, size_z, size_y, size_x, 17, requires_grad=True)
    per_sample = num_rays // batch
    rays = [LidarRays(
        origins=(torch.rand(frames, 6, 3) - 0.5) * torch.tensor([4.0, 4.0, 0.5]) + 1.5,
        directions=F.normalize(torch.randn(per_sample, 3) * torch.tensor([1.0, 1.0, 0.1]), dim=1),
        frame_cam=torch.stack([torch.randint(0, frames, (per_sample,)),
                               torch.randint(0, 6, (per_sample,))], dim=1),
        depth=torch.rand(per_sample) * 40, labels=torch.randint(0, 17, (per_sample,)))
        for _ in range(batch)]
    # 500 random car rows per sample: src | tgt | floor (z, y, x), class 4, frame.
    flow = [torch.cat([torch.randint(0, n, (500, 1)) for n in (size_z, size_y, size_x) * 3]
                      + [torch.full((500, 1), 4), torch.randint(0, frames, (500, 1))],
                      dim=1).to(torch.uint8)
            for _ in range(batch)]
    geometry = occ3d_geometry(grid_shape=args.grid,
                              render_frame_ids=list(range(-(frames // 2), frames - frames // 2)))
    renderer = VolumeRenderer(geometry, samples_per_ray=args.samples, use_flow=True,
                              render_impl='torch')
    class_weights, depth_loss, semantic_loss = (ClassBalancedLogWeights(), RenderDepthLoss(),
                                                RenderSemanticLoss())
    flat = flatten_rays(rays)
    if impl == 'rebatched':
        volume_renderer.trilinear_lookup = rebatched_lookup
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch = flat.select(torch.randperm(len(flat)))  # the rays in the training order
        out = renderer(density, semantics, batch, flow)
        weights = class_weights(batch.labels)
        loss = (depth_loss(out.depth, batch.depth, weights)
                + semantic_loss(out.semantics, batch.labels, weights))
        loss.backward()
        elapsed.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(impl=impl, rays=num_rays, seconds=min(elapsed),
                rays_per_s=num_rays / min(elapsed), peak_mib=(peak - baseline) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rays', type=int, nargs='+', default=[1024, 4096])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--frames', type=int, default=7)
    parser.add_argument('--grid', type=int, nargs=3, default=[100, 100, 16], help='X Y Z')
    parser.add_argument('--samples', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--child', nargs=2, metavar=('IMPL', 'RAYS'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args, args.child[0], int(args.child[1]))))
        return
    passthrough = sys.argv[1:]
    print(f'B={args.batch} T={args.frames} grid(X,Y,Z)={tuple(args.grid)} S={args.samples} '
          f'threads={args.threads}; forward + loss + backward, best of {args.repeats}')
    print(f'{"rays":>6} | {"per-ray gather rays/s":>22} {"peak MiB":>9} | '
          f'{"re-batched rays/s":>18} {"peak MiB":>9}')
    for num_rays in args.rays:
        row = {}
        for impl in ('gather', 'rebatched'):
            cmd = [sys.executable, __file__, *passthrough, '--child', impl, str(num_rays)]
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
            result = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            row[impl] = json.loads(result.stdout.strip().splitlines()[-1])
        g, r = row['gather'], row['rebatched']
        print(f'{num_rays:>6} | {g["rays_per_s"]:>22.0f} {g["peak_mib"]:>9.0f} | '
              f'{r["rays_per_s"]:>18.0f} {r["peak_mib"]:>9.0f}')


if __name__ == '__main__':
    main()
