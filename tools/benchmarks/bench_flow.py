"""Benchmark flow-GT generation: the original dense algorithm vs the culled, parallel one.

Side by side on the same samples of one run (spec 5.2):

- ``dense``: the direct original algorithm (:func:`mmdet3d.testing.flow_oracle.reference_flow`,
  the oracle of tests/test_datasets/test_flow_gt.py): every enlarged box tested against all
  640,000 voxel centres with devkit ``points_in_box``, once per box and offset; compute only,
  one process.
- ``culled``: :func:`mmdet3d.datasets.converters.flow_gt.sample_flow` (bounding-box culling, one
  inside test per box); compute only, one process. Its rows are checked to equal ``dense``.
- ``culled+write, N workers``: what tools/create_flow_data.py does for every sample of the set
  (compute, compress, atomic write) with N worker processes; wall time / samples.

The infos come from ``--info-file`` or are built in memory from a nuScenes-layout dataroot
(default data/demo); ``--generate`` first writes a tiny demo world into a temporary folder.

Usage:
    python tools/benchmarks/bench_flow.py [--root-path data/demo] [--samples 4] [--workers 2]
    python tools/benchmarks/bench_flow.py --generate [--scenes 2] [--samples-per-scene 6]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from mmdet3d.datasets.converters import flow_gt, nuscenes_infos  # noqa: E402
from mmdet3d.formats.flow_rows import FlowGT  # noqa: E402
from mmdet3d.formats.info_pkl import load_infos  # noqa: E402
from mmdet3d.testing import flow_oracle  # noqa: E402


def _infos(args: argparse.Namespace, tmp: str) -> list[dict]:
    if args.info_file:
        return load_infos(args.info_file)[0]
    root = args.root_path
    if args.generate:
        root = os.path.join(tmp, 'demo')
        subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'create_demo_data.py'),
                        '--out', root, '--scenes', str(args.scenes), '--samples-per-scene',
                        str(args.samples_per_scene), '--sweeps-per-sample', '0',
                        '--image-size', '64x36', '--no-progress'], check=True)
    nusc = nuscenes_infos.load_nuscenes(root, args.version)
    splits = nuscenes_infos.create_infos(nusc, args.version, os.path.join(root, 'gts'))
    return [info for split in splits.values() for info in split]


def _same(ref: tuple[np.ndarray, np.ndarray, np.ndarray], gt: FlowGT) -> bool:
    return (np.array_equal(ref[0], gt.flow) and np.array_equal(ref[2], gt.indices)
            and np.allclose(ref[1], gt.transforms, atol=1e-4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root-path', default='data/demo')
    parser.add_argument('--version', default='v1.0-mini')
    parser.add_argument('--info-file', default=None, help='use this info pkl instead')
    parser.add_argument('--generate', action='store_true', help='generate a tiny demo world')
    parser.add_argument('--scenes', type=int, default=2)
    parser.add_argument('--samples-per-scene', type=int, default=6)
    parser.add_argument('--samples', type=int, default=4, help='samples timed with dense')
    parser.add_argument('--workers', type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        infos = flow_gt.sort_infos(_infos(args, tmp))
        picks = np.linspace(0, len(infos) - 1, min(args.samples, len(infos))).round()
        picks = sorted({int(k) for k in picks})
        grid = flow_oracle.dense_grid()

        start = time.perf_counter()
        dense = [flow_oracle.reference_flow(infos, k, grid=grid) for k in picks]
        dense_s = (time.perf_counter() - start) / len(picks)

        start = time.perf_counter()
        culled = [flow_gt.sample_flow(infos, k) for k in picks]
        culled_s = (time.perf_counter() - start) / len(picks)
        if not all(_same(ref, gt) for ref, gt in zip(dense, culled)):
            raise SystemExit('culled rows differ from the dense reference')

        start = time.perf_counter()
        rows = sum(flow_gt.write_flow(infos, range(len(infos)), os.path.join(tmp, 'flow'),
                                      workers=args.workers))
        written_s = (time.perf_counter() - start) / len(infos)

    boxes = [len(flow_gt.movable_boxes(infos[k], np.eye(4))) for k in picks]  # valid, movable
    result = dict(
        samples_timed=len(picks), samples_written=len(infos), movable_boxes_mean=np.mean(boxes),
        rows_mean=float(np.mean([len(gt.flow) for gt in culled])), rows_written=int(rows),
        dense_ms=1e3 * dense_s, culled_ms=1e3 * culled_s,
        culled_write_ms=1e3 * written_s, workers=args.workers,
        speedup_compute=dense_s / culled_s, speedup_end_to_end=dense_s / written_s)
    print(f"{'implementation':<36}{'ms / sample':>14}{'speed-up':>10}")
    print(f"{'dense (original algorithm)':<36}{result['dense_ms']:>14.1f}{1:>10.1f}")
    print(f"{'culled, 1 process':<36}{result['culled_ms']:>14.1f}"
          f"{result['speedup_compute']:>10.1f}")
    label = f'culled+write, {args.workers} workers'
    print(f"{label:<36}{result['culled_write_ms']:>14.1f}{result['speedup_end_to_end']:>10.1f}")
    print(json.dumps({k: round(float(v), 3) for k, v in result.items()}))


if __name__ == '__main__':
    main()
