"""Benchmark bev_pool_v2: the compiled extension against the pure-PyTorch reference.

Reports forward and forward+backward time (median of ``--repeats`` runs) and peak extra memory
(over the inputs) side by side, with the reference/extension ratios, at the Swin-B config's sizes
(6 cameras, 32x88 features, 88 depth bins, C=32, 200x200x16 grid, ranks from a nuScenes-like
6-camera frustum geometry) and at a small size. On a machine with CUDA it repeats the runs on the
GPU. CPU peak memory is the rise of the process's peak RSS (``/proc/self/clear_refs``), measured
with glibc's mmap threshold pinned so that freed tensors are returned to the OS.

Usage::

    python tools/benchmarks/bench_bev_pool.py [--batch 1] [--repeats 5] [--sizes swin_b small]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmdet3d.ops.bev_pool_v2 import bev_pool_v2, ext_status, load_ext  # noqa: E402
from mmdet3d.ops.bev_pool_v2 import voxel_pooling_prepare_v2  # noqa: E402
from mmdet3d.structures.occ3d import GRID_LOWER  # noqa: E402  both sizes span Occ3D's range

MMAP_ENV = 'MALLOC_MMAP_THRESHOLD_'


@dataclass(frozen=True)
class Size:
    """Feature map (H, W), depth bins D (1.0 + 0.5 * j m), channels C, grid (X, Y, Z), voxel m."""
    height: int
    width: int
    bins: int
    channels: int
    grid: tuple[int, int, int]
    voxel: float


SIZES = {
    'swin_b': Size(32, 88, 88, 32, (200, 200, 16), 0.4),
    'small': Size(8, 22, 22, 16, (50, 50, 4), 1.6),
}


def camera_rig(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """nuScenes-like 6-camera rig: cam2ego (B, 6, 4, 4) and intrinsics (B, 6, 3, 3), 1600x900."""
    yaws = torch.tensor([55.0, 0.0, -55.0, 110.0, 180.0, -110.0]).deg2rad()
    cam2ego = torch.zeros(6, 4, 4)
    for n, yaw in enumerate(yaws):
        forward = torch.tensor([torch.cos(yaw), torch.sin(yaw), 0.0])
        right = torch.tensor([torch.sin(yaw), -torch.cos(yaw), 0.0])
        down = torch.tensor([0.0, 0.0, -1.0])
        cam2ego[n, :3, :3] = torch.stack([right, down, forward], dim=1)  # camera axes x, y, z
        cam2ego[n, :3, 3] = 1.0 * forward + torch.tensor([1.0, 0.0, 1.6])
        cam2ego[n, 3, 3] = 1.0
    focal = torch.tensor([1266.0, 1266.0, 1266.0, 1266.0, 800.0, 1266.0])
    intrins = torch.zeros(6, 3, 3)
    intrins[:, 0, 0] = focal
    intrins[:, 1, 1] = focal
    intrins[:, 0, 2], intrins[:, 1, 2], intrins[:, 2, 2] = 800.0, 450.0, 1.0
    return cam2ego.expand(batch, -1, -1, -1), intrins.expand(batch, -1, -1, -1)


def frustum_points(size: Size, batch: int) -> torch.Tensor:
    """(B, 6, D, H, W, 3) ego points of the test-time 512x1408 input (scale 0.88, crop 280)."""
    u = torch.linspace(0, 1407, size.width)
    v = torch.linspace(0, 511, size.height)
    d = 1.0 + 0.5 * torch.arange(size.bins, dtype=torch.float32) * 88 / size.bins
    d, v, u = torch.meshgrid(d, v, u, indexing='ij')  # (D, H, W) each
    u, v = u / 0.88, (v + 280.0) / 0.88  # undo resize and bottom crop
    pix = torch.stack([u * d, v * d, d], dim=-1)  # (D, H, W, 3)
    cam2ego, intrins = camera_rig(batch)
    rays = torch.einsum('bnij,dhwj->bndhwi', torch.linalg.inv(intrins), pix)
    return torch.einsum('bnij,bndhwj->bndhwi', cam2ego[..., :3, :3], rays) \
        + cam2ego[:, :, None, None, None, :3, 3]


def make_inputs(size: Size, batch: int, device: str) -> tuple:
    """Random depth (softmax over D) and features with ranks from the rig's frustum."""
    ranks = voxel_pooling_prepare_v2(frustum_points(size, batch), GRID_LOWER, (size.voxel,) * 3,
                                     size.grid)
    ranks_bev, ranks_depth, ranks_feat, starts, lengths = (r.to(device) for r in ranks)
    gen = torch.Generator().manual_seed(0)
    depth = torch.randn(batch, 6, size.bins, size.height, size.width, generator=gen).softmax(2)
    feat = torch.randn(batch, 6, size.height, size.width, size.channels, generator=gen)
    size_x, size_y, size_z = size.grid
    shape = (batch, size_z, size_y, size_x, size.channels)
    out_grad = torch.randn(batch, size.channels, size_z, size_y, size_x, generator=gen)
    return (depth.to(device), feat.to(device), ranks_depth, ranks_feat, ranks_bev, shape, starts,
            lengths), out_grad.to(device)


def _proc_kb(field: str) -> int:
    return int(re.search(rf'{field}:\s+(\d+) kB', Path('/proc/self/status').read_text()).group(1))


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def peak_mib(fn: Callable[[], None], device: str) -> float:
    """Peak extra memory (MiB, over what is allocated before) of one call of ``fn``."""
    _sync(device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    Path('/proc/self/clear_refs').write_text('5')  # reset the peak RSS to the current RSS
    base = _proc_kb('VmRSS')
    fn()
    return (_proc_kb('VmHWM') - base) / 1024


def median_seconds(fns: dict[str, Callable[[], None]], device: str,
                   repeats: int) -> dict[str, float]:
    """Median time of each function; the runs are interleaved so that both see the same load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench(size_name: str, batch: int, device: str, repeats: int) -> None:
    size = SIZES[size_name]
    args, out_grad = make_inputs(size, batch, device)
    depth, feat = args[0].requires_grad_(), args[1].requires_grad_()
    points = args[2].numel()
    total = depth.numel()
    print(f'\n[{device}] {size_name}: B={batch}, 6 cams, {size.height}x{size.width}, '
          f'D={size.bins}, C={size.channels}, grid {size.grid}: {points} of {total} frustum '
          f'points kept ({points / total:.1%}), {args[6].numel()} voxels hit')

    def forward(impl: str) -> None:
        bev_pool_v2(*args, impl=impl)

    def forward_backward(impl: str) -> None:
        bev_pool_v2(*args, impl=impl).backward(out_grad)
        depth.grad = feat.grad = None

    rows = {}
    for mode, fn in (('fwd', forward), ('fwd+bwd', forward_backward)):
        calls = {impl: (lambda impl=impl: fn(impl)) for impl in ('torch', 'ext')}
        peaks = {impl: peak_mib(call, device) for impl, call in calls.items()}
        seconds = median_seconds(calls, device, repeats)
        rows[mode] = {impl: (seconds[impl], peaks[impl]) for impl in calls}
    print(f'{"":10}{"fwd ms":>10}{"fwd MiB":>10}{"fwd+bwd ms":>12}{"fwd+bwd MiB":>13}')
    for impl, name in (('torch', 'reference'), ('ext', 'extension')):
        (fwd_t, fwd_m), (fb_t, fb_m) = rows['fwd'][impl], rows['fwd+bwd'][impl]
        print(f'{name:10}{fwd_t * 1e3:10.1f}{fwd_m:10.1f}{fb_t * 1e3:12.1f}{fb_m:13.1f}')
    ratios = [(rows[m]['torch'][k], rows[m]['ext'][k]) for m in rows for k in (0, 1)]
    print(f'{"ref/ext":10}' + ''.join(f'{_ratio(r, e):>{w}}' for (r, e), w in
                                      zip(ratios, (10, 10, 12, 13))))


def _ratio(ref: float, ext: float) -> str:
    return f'{ref / ext:.2f}x' if ext > 0 else 'n/a'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--sizes', nargs='+', default=list(SIZES), choices=list(SIZES))
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch default)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if load_ext() is None:
        sys.exit(f'cannot compare: {ext_status()}')
    print(ext_status())
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() and load_ext().with_cuda() else [])
    for device in devices:
        for size_name in args.sizes:
            bench(size_name, args.batch, device, args.repeats)


if __name__ == '__main__':
    if MMAP_ENV not in os.environ:  # big allocations mmapped, so frees show in the RSS
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, MMAP_ENV: str(2**16)})
    main()
