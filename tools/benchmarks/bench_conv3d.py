"""Benchmark the 3-D encoder's convolutions on the CPU, each against its plain form.

1. ``Conv3d``: for one CPU sample (batch 1) PyTorch runs small float32 3-D convolutions on its
   native ``slow_conv3d`` kernel; :class:`mmdet3d.models.layers.conv3d.Conv3d` pairs the sample
   with a zero sample so that oneDNN runs them. Shapes: the 3x3x3 convs of the tiny CPU config's
   3-D encoder (BasicBlock3D) on a 40x40x16 and a 100x100x16 grid, with 16 channels.
2. The ``LSSFPN3D`` neck: the original upsamples the two coarse scales, concatenates all three
   and convolves the concatenation with the 1x1x1 conv; :class:`mmdet3d.models.necks.lss_fpn3d.
   LSSFPN3D` projects each scale with its slice of the same weight first and upsamples the
   projections (equal up to float rounding). Shapes: the tiny CPU config's neck (16/32/64
   channels on 100x100x16, batch 2) and the paper config's (32/64/128 on 200x200x16, batch 1).

Forward + backward median times of both forms, side by side with the ratio.

Usage:
    python tools/benchmarks/bench_conv3d.py [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmdet3d.models.layers.conv3d import Conv3d  # noqa: E402
from mmdet3d.models.necks.lss_fpn3d import LSSFPN3D  # noqa: E402

#: (input shape, out channels): the stride-1 3x3x3 convs of CustomResNet3D's three stages at
#: 16/32/64 channels (strided convs keep PyTorch's kernel, so both classes run the same code)
CONV_SHAPES = [
    ((1, 16, 16, 40, 40), 16), ((1, 32, 8, 20, 20), 32), ((1, 64, 4, 10, 10), 64),
    ((1, 16, 16, 100, 100), 16), ((1, 32, 8, 50, 50), 32), ((1, 64, 4, 25, 25), 64),
]
#: (name, batch, channels of the three scales, finest (Z, Y, X), out channels)
NECK_SHAPES = [('tiny CPU config', 2, (16, 32, 64), (16, 100, 100), 16),
               ('paper config', 1, (32, 64, 128), (16, 200, 200), 32)]


def median_ms(step: Callable[[], torch.Tensor], module: nn.Module, repeats: int) -> float:
    """Median time in ms of ``step()`` (a forward returning the output) plus a backward of its
    squared sum, after one warm-up."""
    times = []
    for i in range(repeats + 1):
        module.zero_grad()
        start = time.perf_counter()
        step().square().sum().backward()
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def neck_original_order(neck: LSSFPN3D, feats: list[torch.Tensor]) -> torch.Tensor:
    """Upsample, concatenate, then the 1x1x1 conv + BN + ReLU (the original's order)."""
    x_1, x_2, x_4 = feats
    x = torch.cat([x_1,
                   F.interpolate(x_2, scale_factor=2, mode='trilinear', align_corners=True),
                   F.interpolate(x_4, scale_factor=4, mode='trilinear', align_corners=True)], 1)
    return neck.conv(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} CPU thread(s), forward + backward, median '
          f'of {args.repeats}')
    print(f'{"Conv3d input (N, C, D, H, W)":>30} {"out":>4} {"nn.Conv3d ms":>13} '
          f'{"Conv3d ms":>10} {"ratio":>6}')
    for shape, out_channels in CONV_SHAPES:
        torch.manual_seed(0)
        plain = nn.Conv3d(shape[1], out_channels, 3, padding=1, bias=False)
        ours = Conv3d(shape[1], out_channels, 3, padding=1, bias=False)
        ours.load_state_dict(plain.state_dict())
        x = torch.randn(shape, requires_grad=True)
        base = median_ms(lambda: plain(x), plain, args.repeats)
        fast = median_ms(lambda: ours(x), ours, args.repeats)
        print(f'{str(shape):>30} {out_channels:>4} {base:>13.1f} {fast:>10.1f} '
              f'{base / fast:>5.2f}x')
    print(f'{"LSSFPN3D neck shapes":>30} {"original order ms":>18} {"LSSFPN3D ms":>12} '
          f'{"ratio":>6}')
    for name, batch, channels, (z, y, x), out_channels in NECK_SHAPES:
        torch.manual_seed(0)
        neck = LSSFPN3D(sum(channels), out_channels).train()
        feats = [torch.randn(batch, c, z // s, y // s, x // s, requires_grad=True)
                 for c, s in zip(channels, (1, 2, 4))]
        base = median_ms(lambda: neck_original_order(neck, feats), neck, args.repeats)
        fast = median_ms(lambda: neck(feats), neck, args.repeats)
        print(f'{name:>30} {base:18.1f} {fast:12.1f} {base / fast:5.2f}x')


if __name__ == '__main__':
    main()
