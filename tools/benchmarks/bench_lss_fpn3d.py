"""Benchmark the LSSFPN3D neck: project-then-upsample (the module) vs the original order.

The original upsamples the two coarse scales, concatenates all three and convolves the
concatenation with the 1x1x1 conv; :class:`mmdet3d.models.necks.lss_fpn3d.LSSFPN3D` projects
each scale with its slice of the same weight first and upsamples the projections (equal up to
float rounding). Forward + backward median times of both, side by side with the ratio, at the
neck's shapes of the tiny CPU config (16/32/64 channels on 100x100x16, batch 2) and of the
paper config (32/64/128 channels on 200x200x16, batch 1).

Usage:
    python tools/benchmarks/bench_lss_fpn3d.py [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmdet3d.models.necks.lss_fpn3d import LSSFPN3D  # noqa: E402

#: (name, batch, channels of the three scales, finest (Z, Y, X), out channels)
SHAPES = [('tiny CPU config', 2, (16, 32, 64), (16, 100, 100), 16),
          ('paper config', 1, (32, 64, 128), (16, 200, 200), 32)]


def original_order(neck: LSSFPN3D, feats: list[torch.Tensor]) -> torch.Tensor:
    """Upsample, concatenate, then the 1x1x1 conv + BN + ReLU (the original's order)."""
    x_1, x_2, x_4 = feats
    x = torch.cat([x_1,
                   F.interpolate(x_2, scale_factor=2, mode='trilinear', align_corners=True),
                   F.interpolate(x_4, scale_factor=4, mode='trilinear', align_corners=True)], 1)
    return neck.conv(x)


def median_ms(forward, neck: LSSFPN3D, feats: list[torch.Tensor], repeats: int) -> float:
    """Median forward + backward time in ms (after one warm-up)."""
    times = []
    for i in range(repeats + 1):
        inputs = [f.clone().requires_grad_() for f in feats]
        neck.zero_grad()
        start = time.perf_counter()
        forward(neck, inputs).sum().backward()
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} CPU thread(s), forward + backward, median '
          f'of {args.repeats}')
    print(f'{"shapes":>16} {"original order ms":>18} {"LSSFPN3D ms":>12} {"ratio":>6}')
    for name, batch, channels, (z, y, x), out_channels in SHAPES:
        torch.manual_seed(0)
        neck = LSSFPN3D(sum(channels), out_channels).train()
        feats = [torch.randn(batch, c, z // s, y // s, x // s)
                 for c, s in zip(channels, (1, 2, 4))]
        original = median_ms(original_order, neck, feats, args.repeats)
        module = median_ms(lambda n, f: n(f), neck, feats, args.repeats)
        print(f'{name:>16} {original:18.1f} {module:12.1f} {original / module:6.2f}')


if __name__ == '__main__':
    main()
