"""Generate the synthetic demo dataset (nuScenes v1.0-mini layout + lidarseg/panoptic + Occ3D).

Usage:
    python tools/create_demo_data.py --out data/demo [--scenes 10] [--samples-per-scene 10]
        [--sweeps-per-sample 2] [--image-size 800x450] [--seed 0]
    python tools/create_demo_data.py --out data/demo --check   # verify an existing set
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# numba parallelises the heavy kernels; multi-threaded BLAS on tiny matrices only contends
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet3d.datasets.synthetic import DemoConfig, generate  # noqa: E402
from mmdet3d.datasets.synthetic.check import DemoDataError, check_dataset  # noqa: E402


def _image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--image-size must look like 800x450, got {text!r}')
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default = DemoConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output dataroot, e.g. data/demo')
    parser.add_argument('--scenes', type=int, default=default.scenes,
                        help='number of scenes (1..10, v1.0-mini names)')
    parser.add_argument('--samples-per-scene', type=int, default=default.samples_per_scene,
                        help='keyframes (2 Hz) per scene')
    parser.add_argument('--sweeps-per-sample', type=int, default=default.sweeps_per_sample,
                        help='LiDAR sweeps between consecutive keyframes')
    parser.add_argument('--image-size', type=_image_size,
                        default=default.image_size, help='camera image size WxH')
    parser.add_argument('--seed', type=int, default=default.seed)
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--check', action='store_true',
                        help='only verify the set at --out (names the first bad file)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.check:
        try:
            check_dataset(args.out)
        except DemoDataError as err:
            raise SystemExit(f'create_demo_data: {err}')
        logging.info('%s: demo dataset is complete', args.out)
        return
    cfg = DemoConfig(scenes=args.scenes, samples_per_scene=args.samples_per_scene,
                     sweeps_per_sample=args.sweeps_per_sample, image_size=args.image_size,
                     seed=args.seed)
    try:
        cfg.validate()
    except ValueError as err:
        raise SystemExit(f'create_demo_data: {err}')
    start = time.perf_counter()
    out = generate(args.out, cfg, progress=not args.no_progress)
    logging.info('demo dataset written to %s in %.1f s', out, time.perf_counter() - start)


if __name__ == '__main__':
    main()
