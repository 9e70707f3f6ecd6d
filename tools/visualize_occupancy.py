"""Draw saved occupancy predictions next to the Occ3D ground truth (bird's-eye view).

    python tools/visualize_occupancy.py --pred-dir DIR (--info FILE | --gt-root DIR) --out DIR
        [--max-samples N] [--mask camera|lidar|none] [--voxels] [--no-shade]

``DIR`` holds ``<scene>/<token>.npz`` files of ``tools/test.py --out DIR``. Writes
``<out>/<scene>/<token>.png`` (GT | prediction | per-column disagreement) and prints each path.
See docs/visualization.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet3d.visualization.occ_samples import (  # noqa: E402
    MASKS, pair_samples, write_occupancy_figures)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pred-dir', required=True, help='predictions <scene>/<token>.npz')
    gt = parser.add_mutually_exclusive_group()
    gt.add_argument('--info', help='info pkl whose occ_path gives the GT (timestamp order)')
    gt.add_argument('--gt-root', help='Occ3D gts folder (<gt-root>/<scene>/<token>/labels.npz)')
    parser.add_argument('--path-prefix', help='prefix of relative occ_path values in --info '
                        '(default: relative to the working directory, the repository root)')
    parser.add_argument('--out', required=True, help='output folder of the PNGs')
    parser.add_argument('--max-samples', type=int, default=None, help='draw the first N')
    parser.add_argument('--mask', choices=MASKS, default='camera',
                        help='GT visibility mask applied to GT and prediction')
    parser.add_argument('--voxels', action='store_true',
                        help='also write 3-D views <token>_3d_{gt,pred}.png')
    parser.add_argument('--no-shade', action='store_true',
                        help='flat class colours (no darkening of low voxels)')
    parser.add_argument('--dpi', type=int, default=100)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    if args.max_samples is not None and args.max_samples < 1:
        raise SystemExit('--max-samples must be >= 1')
    samples = pair_samples(args.pred_dir, args.info, args.gt_root, args.path_prefix)
    samples = samples[:args.max_samples]
    paths = write_occupancy_figures(samples, args.out, args.mask, args.voxels,
                                    not args.no_shade, dpi=args.dpi)
    for path in paths:
        print(path)
    return paths


if __name__ == '__main__':
    main()
