"""Benchmark the Conv3d of the 3-D encoder: ``nn.Conv3d`` against the project's ``Conv3d``.

For one CPU sample (batch 1) PyTorch runs small float32 3-D convolutions on its native
``slow_conv3d`` kernel; :class:`mmdet3d.models.layers.conv3d.Conv3d` pairs the sample with a
zero sample so that oneDNN runs them. Forward + backward median times of both, side by side with
the ratio, at the shapes of the 3-D encoder (BasicBlock3D 3x3x3 convs) of the tiny CPU config
on a 40x40x16 and a 100x100x16 grid, with 16 channels.

Usage:
    python tools/benchmarks/bench_conv3d.py [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmdet3d.models.layers.conv3d import Conv3d  # noqa: E402

#: (input shape, out channels): the stride-1 3x3x3 convs of CustomResNet3D's three stages at
#: 16/32/64 channels (strided convs keep PyTorch's kernel, so both classes run the same code)
SHAPES = [
    ((1, 16, 16, 40, 40), 16), ((1, 32, 8, 20, 20), 32), ((1, 64, 4, 10, 10), 64),
    ((1, 16, 16, 100, 100), 16), ((1, 32, 8, 50, 50), 32), ((1, 64, 4, 25, 25), 64),
]


def median_ms(conv: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median forward + backward time in ms (after one warm-up)."""
    times = []
    for i in range(repeats + 1):
        conv.zero_grad()
        start = time.perf_counter()
        conv(x).square().sum().backward()
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
    print(f'{"input (N, C, D, H, W)":>24} {"out":>4} {"nn.Conv3d ms":>13} {"Conv3d ms":>10} '
          f'{"ratio":>6}')
    for shape, out_channels in SHAPES:
        torch.manual_seed(0)
        plain = nn.Conv3d(shape[1], out_channels, 3, padding=1, bias=False)
        ours = Conv3d(shape[1], out_channels, 3, padding=1, bias=False)
        ours.load_state_dict(plain.state_dict())
        x = torch.randn(shape, requires_grad=True)
        base, fast = median_ms(plain, x, args.repeats), median_ms(ours, x, args.repeats)
        ratio = base / fast
        print(f'{str(shape):>24} {out_channels:>4} {base:>13.1f} {fast:>10.1f} {ratio:>5.1f}x')


if __name__ == '__main__':
    main()
