"""Forward + backward time and peak memory of one OccFlowNet training iteration, per iteration.

Runs ``model(**batch, mode='loss')`` and ``backward()`` of the summed losses ``--iters`` times on
one fixed synthetic batch (the ray-cast world of ``mmdet3d.testing.occ_inputs``)
and prints, per iteration, the forward and backward time and the memory: the peak during the
iteration and what is still held at its end, both above the level before the first iteration.
Flat figures from iteration 2 on (iteration 1 also allocates the gradients) show that memory
does not grow across iterations.

Presets (``--batch`` samples per iteration, default 1):
    tiny   the golden tiny config (2 cameras, 64x192, grid 32x32x8).
    paper  ``occflownet_stbase_2d_flow.py`` (Swin-B, flow renderer) at reduced input: ``--cams``
           cameras of ``--paper-input`` pixels, full 200x200x16 grid, ``--paper-rays`` rays;
           ``--with-cp on|off`` overrides the Swin backbone's activation checkpointing.

Each iteration line also gives the renderer's share of the forward time (``VolumeRenderer``,
timed with forward hooks; the backward through it is part of the backward column).

Memory: on CUDA ``torch.cuda.max_memory_allocated`` / ``memory_allocated``; on CPU the resident
set (Linux: the peak is reset per iteration through ``/proc/self/clear_refs`` and read from
``VmHWM``). Each run is a fresh subprocess with a fixed glibc mmap threshold so that freed tensors
leave the resident set. ``--amp`` adds runs under ``mmengine.runner.amp.autocast`` as
``AmpOptimWrapper`` enters it (bfloat16 on CPU, ``--amp-dtype`` on CUDA); the backward runs
outside autocast, without loss scaling. On CPU the paper preset's bf16 backward aborts the process
(torch 2.13 + oneDNN: the weight gradient of the 1x1x1 Conv3d 224->32 of LSSFPN3D at 16x200x200
corrupts the heap and is NaN); ``--no-mkldnn`` routes convolutions around oneDNN. On CUDA the
paper preset under float16 autocast fails at its first iteration (measured on an H200, 6 cameras
at 256x704): the depth distribution overflows to NaN and the depth BCE asserts; bfloat16 runs.

Usage:
    python tools/benchmarks/bench_model.py [--presets tiny paper] [--iters N] [--amp]
        [--device cpu|cuda] [--threads N] [--cams 2] [--paper-input 128 352]
        [--paper-rays 8192] [--batch 1] [--with-cp on|off] [--no-mkldnn]
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from mmengine.runner.amp import autocast  # noqa: E402

from mmdet3d.engine.runner_setup import load_config  # noqa: E402
from mmdet3d.registry import MODELS  # noqa: E402
from mmdet3d.testing import occ_inputs  # noqa: E402
from mmdet3d.testing.tiny_model import TINY_MODEL_CONFIG  # noqa: E402
from mmdet3d.utils import register_all_modules  # noqa: E402

CONFIGS = {
    'tiny': TINY_MODEL_CONFIG,
    'paper': REPO_ROOT / 'configs' / 'occflownet' / 'occflownet_stbase_2d_flow.py',
}
MIB = 1024.0 ** 2
# A paper-preset iteration takes 1-1.5 min on one CPU core: one by default keeps the default run
# near 2 minutes; use --iters 3 to see its memory stay flat.
DEFAULT_ITERS = {'tiny': 5, 'paper': 1}


class MemoryMeter:
    """Per-iteration peak and current memory in bytes (CUDA allocator or process RSS)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            Path('/proc/self/clear_refs').write_text('5')  # resets VmHWM to the current RSS

    def _status(self, field: str) -> float:
        match = re.search(rf'^{field}:\s+(\d+) kB', Path('/proc/self/status').read_text(), re.M)
        return float(match.group(1)) * 1024

    def peak(self) -> float:
        return torch.cuda.max_memory_allocated() if self.cuda else self._status('VmHWM')

    def current(self) -> float:
        return torch.cuda.memory_allocated() if self.cuda else self._status('VmRSS')

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def build(args: argparse.Namespace, preset: str, device: torch.device):
    """Model (train mode) and one batch of inputs on ``device``."""
    cfg = load_config(str(CONFIGS[preset]))
    if preset == 'paper':
        if args.with_cp is not None:
            cfg.model.img_backbone.with_cp = args.with_cp == 'on'
        height, width = args.paper_input
        cfg.model.img_view_transformer.input_size = (height, width)
        geo = occ_inputs.Geometry(cams=args.cams, height=height, width=width,
                                grid_size=tuple(cfg.geometry.model_grid_shape))
        rays_per_view = -(-args.paper_rays // (7 * args.cams))
        cfg.model.rays_batch_size = args.paper_rays
    else:
        geo = occ_inputs.Geometry()
        rays_per_view = 64
    model = MODELS.build(cfg.model).to(device).train()
    inputs = occ_inputs.make_batch(batch_size=args.batch, geo=geo, rays_per_view=rays_per_view,
                                 flips=(True, False))
    return model, model.data_preprocessor(occ_inputs.to_collated(inputs), True), geo


def run_child(args: argparse.Namespace, preset: str, precision: str) -> None:
    """Time and measure ``args.iters`` training iterations; print one line per iteration."""
    register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.no_mkldnn:
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    device = torch.device(args.device)
    model, inputs, geo = build(args, preset, device)
    num_rays = sum(len(sample.gt_rays) for sample in inputs['data_samples'])
    params = sum(p.numel() for p in model.parameters())
    amp_dtype = getattr(torch, args.amp_dtype) if device.type == 'cuda' else torch.bfloat16
    enabled = precision == 'amp'
    label = f'{preset} {precision}' + (f' ({str(amp_dtype)[6:]})' if enabled else '')
    print(f'[{label}] {params / 1e6:.1f} M params, batch {args.batch}, {geo.cams} cam(s) '
          f'{geo.height}x{geo.width}, grid {geo.grid_size}, {num_rays} rays, {device}, '
          f'{torch.get_num_threads()} threads', flush=True)
    meter = MemoryMeter(device)
    renderer_seconds: list[float] = []  # -start, end pairs of the renderer's forward calls

    def clock(sign: float):
        def hook(*_) -> None:  # returns None: inputs and outputs stay untouched
            meter.sync()
            renderer_seconds.append(sign * time.perf_counter())
        return hook

    model.renderer.register_forward_pre_hook(clock(-1.0))
    model.renderer.register_forward_hook(clock(1.0))
    meter.sync()
    base = meter.current()
    rows = []
    iters = args.iters or DEFAULT_ITERS[preset]
    for it in range(1, iters + 1):
        model.zero_grad(set_to_none=True)
        renderer_seconds.clear()
        meter.sync()
        meter.reset_peak()
        start = time.perf_counter()
        with autocast(device_type=device.type, dtype=amp_dtype, enabled=enabled):
            losses = model(**inputs, mode='loss')
        total = sum(losses.values())
        meter.sync()
        mid = time.perf_counter()
        total.backward()
        meter.sync()
        end = time.perf_counter()
        rows.append((mid - start, end - mid, (meter.peak() - base) / MIB,
                     (meter.current() - base) / MIB))
        fwd, bwd, peak, held = rows[-1]
        share = 100 * sum(renderer_seconds) / fwd
        print(f'  iter {it}: forward {fwd:7.2f} s (renderer {share:4.1f} %)  backward {bwd:7.2f} s'
              f'  total {fwd + bwd:7.2f} s | peak +{peak:8.1f} MiB  held after +{held:8.1f} MiB'
              f'  loss {total.item():.4f}', flush=True)
    if len(rows) > 2:
        steady = rows[1:]
        mean = sum(fwd + bwd for fwd, bwd, _, _ in steady) / len(steady)
        peaks = [peak for _, _, peak, _ in steady]
        growth = steady[-1][3] - steady[0][3]
        print(f'  iters 2-{len(rows)}: mean total {mean:.2f} s; peak {min(peaks):.1f}..'
              f'{max(peaks):.1f} MiB; held growth {growth:+.1f} MiB', flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--presets', nargs='+', choices=sorted(CONFIGS), default=['tiny', 'paper'])
    parser.add_argument('--iters', type=int,
                        help=f'iterations per run (default: {DEFAULT_ITERS})')
    parser.add_argument('--amp', action='store_true', help='also run under autocast')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default='bfloat16',
                        help='autocast dtype on CUDA (CPU autocast is always bfloat16)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (0: torch default)')
    parser.add_argument('--cams', type=int, default=2,
                        help='paper preset: cameras, 2..6 (the DepthNet BN needs B*N > 1)')
    parser.add_argument('--paper-input', type=int, nargs=2, default=[128, 352],
                        metavar=('H', 'W'), help='paper preset: image size (multiples of 32)')
    parser.add_argument('--paper-rays', type=int, default=8192,
                        help='paper preset: rays rendered per iteration')
    parser.add_argument('--batch', type=int, default=1, help='samples per iteration')
    parser.add_argument('--with-cp', choices=['on', 'off'],
                        help="paper preset: Swin activation checkpointing (default: the config's)")
    parser.add_argument('--no-mkldnn', action='store_true',
                        help='disable oneDNN (CPU bf16 Conv3d 1x1x1 weight-grad bug, see above)')
    parser.add_argument('--child', nargs=2, metavar=('PRESET', 'PRECISION'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args, *args.child)
        return
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
    for preset in args.presets:
        for precision in ['fp32'] + (['amp'] if args.amp else []):
            cmd = [sys.executable, __file__, *sys.argv[1:], '--child', preset, precision]
            result = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
            if result.returncode == 0:
                continue
            if result.returncode < 0:
                reason = f'killed by {signal.Signals(-result.returncode).name}'
            else:
                lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
                reason = lines[-1] if lines else f'exit code {result.returncode}'
            print(f'  [{preset} {precision}] FAILED: {reason}', flush=True)


if __name__ == '__main__':
    main()
