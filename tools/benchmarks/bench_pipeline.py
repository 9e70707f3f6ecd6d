"""Milliseconds per sample of each transform of a config's training pipeline, and the samples per
second one data-loader worker delivers.

The paper configs read 6 cameras x 2 frames of 1600x900 JPEGs, the LiDAR of the 7 render frames,
and build rays, depth GT and flow rows per sample. This runs that pipeline on a demo world
generated at 1600x900 (``--world``; made on first use with ``tools/create_demo_data.py``, the
info and flow converters, ~3 minutes), in one process with one thread like a data-loader worker,
and prints per transform the median milliseconds per sample over ``--samples`` samples (after
``--warmup`` samples that fill caches and compile kernels) and its share of the total.

``--compare TREE`` measures a second source tree (e.g. ``git worktree add /tmp/before HEAD~1``)
on the same world, in subprocesses that alternate with this tree's ``--rounds`` times, so that a
load change on the machine hits both; the ratio is of the per-sample totals.

Usage:
    python tools/benchmarks/bench_pipeline.py [--world data/bench_1600x900] [--config CFG]
        [--samples 6] [--warmup 1] [--compare TREE] [--rounds 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / 'configs' / 'occflownet' / 'occflownet_stbase_2d_flow.py'
DEFAULT_WORLD = REPO_ROOT / 'data' / 'bench_1600x900'
INFO_NAME = 'bevdetv2-nuscenes-mini_infos_train.pkl'


def prepare_world(world: Path) -> None:
    """Generate the 1600x900 demo world with its infos and flow unless it is complete."""
    if (world / INFO_NAME).is_file() and (world / 'flow').is_dir() and (world / '.ready').is_file():
        return
    steps = [
        ['tools/create_demo_data.py', '--out', str(world), '--image-size', '1600x900',
         '--scenes', '3', '--samples-per-scene', '8'],
        ['tools/create_data_bevdet.py', '--root-path', str(world), '--version', 'v1.0-mini',
         '--out-dir', str(world)],
        ['tools/create_flow_data.py', '--info-dir', str(world), '--version', 'v1.0-mini',
         '--out-dir', str(world / 'flow')],
    ]
    for step in steps:
        print('[bench_pipeline]', ' '.join(step), flush=True)
        subprocess.run([sys.executable, *step], cwd=REPO_ROOT, check=True)


def measure(config: str, world: str, samples: int, warmup: int) -> dict:
    """Per-transform milliseconds of ``samples`` samples in this process (one thread)."""
    import torch
    torch.set_num_threads(1)
    from mmdet3d.engine.runner_setup import load_config
    from mmdet3d.registry import DATASETS
    from mmdet3d.utils import register_all_modules

    register_all_modules()
    cfg = load_config(config, None)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.ann_file = os.path.join(world, INFO_NAME)
    dataset_cfg.flow_root = os.path.join(world, 'flow')
    for step in dataset_cfg.pipeline:
        if step['type'] == 'LoadFlowGT':
            step['data_root'] = dataset_cfg.flow_root
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) < warmup + 1:
        raise ValueError(f'{dataset_cfg.ann_file} has {len(dataset)} samples, need more than '
                         f'--warmup {warmup}')
    transforms = dataset.pipeline.transforms
    names = ['get_data_info', *(type(t).__name__ for t in transforms)]
    times: list[list[float]] = [[] for _ in names]  # per step, per timed sample
    for i in range(warmup + samples):
        step_ms = []
        begin = time.perf_counter()
        results = dataset.get_data_info(i % len(dataset))
        step_ms.append((time.perf_counter() - begin) * 1e3)
        for transform in transforms:
            begin = time.perf_counter()
            results = transform(results)
            step_ms.append((time.perf_counter() - begin) * 1e3)
        if i >= warmup:
            for column, value in zip(times, step_ms):
                column.append(value)
    totals = [sum(per_sample) for per_sample in zip(*times)]
    return dict(names=names, ms=[statistics.median(c) for c in times],
                total_ms=statistics.median(totals), samples=samples)


def run_tree(tree: str, args: argparse.Namespace) -> dict:
    """:func:`measure` in a fresh subprocess with ``tree`` first on the import path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    code = ('import json, sys; sys.path.insert(0, sys.argv[1]); '
            'from tools.benchmarks.bench_pipeline import measure; '
            'print("RESULT", json.dumps(measure(sys.argv[2], sys.argv[3], int(sys.argv[4]), '
            'int(sys.argv[5]))))')
    out = subprocess.run([sys.executable, '-c', code, tree, str(args.config), str(args.world),
                          str(args.samples), str(args.warmup)], cwd=tree, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'measuring {tree} failed:\n{out.stderr[-3000:]}')
    line = next(line for line in out.stdout.splitlines() if line.startswith('RESULT '))
    return json.loads(line[len('RESULT '):])


def print_table(title: str, result: dict) -> None:
    total = result['total_ms']
    print(f'\n{title}: {total:.0f} ms per sample = {1e3 / total:.2f} samples/s per worker '
          f'({result["samples"]} samples per round)')
    for name, ms in zip(result['names'], result['ms']):
        print(f'  {name:28s} {ms:8.1f} ms  {100 * ms / sum(result["ms"]):5.1f} %')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--world', type=Path, default=DEFAULT_WORLD,
                        help='1600x900 demo world (generated when missing)')
    parser.add_argument('--config', type=Path, default=DEFAULT_CONFIG)
    parser.add_argument('--samples', type=int, default=6, help='timed samples per round')
    parser.add_argument('--warmup', type=int, default=1, help='untimed samples first')
    parser.add_argument('--compare', help='a second source tree measured side by side')
    parser.add_argument('--rounds', type=int, default=2, help='alternations with --compare')
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args()
    args.world = args.world.resolve()
    args.config = args.config.resolve()
    prepare_world(args.world)
    trees = {'this tree': str(REPO_ROOT)}
    if args.compare:
        trees['compared tree'] = str(Path(args.compare).resolve())
    rounds = args.rounds if args.compare else 1
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            results[name].append(run_tree(tree, args))
    summary = {}
    for name, runs in results.items():
        median = dict(runs[0], total_ms=statistics.median(r['total_ms'] for r in runs),
                      ms=[statistics.median(col) for col in zip(*(r['ms'] for r in runs))])
        print_table(f'{name} ({trees[name]}, median of {len(runs)} round(s))', median)
        summary[name] = dict(tree=trees[name], rounds=runs)
    if args.compare:
        mine = statistics.median(r['total_ms'] for r in results['this tree'])
        other = statistics.median(r['total_ms'] for r in results['compared tree'])
        print(f'\nper-sample time, compared / this tree: {other / mine:.2f}x '
              f'(medians over {rounds} rounds)')
    if args.json:
        from mmdet3d.utils.file_io import atomic_open
        with atomic_open(args.json) as f:
            f.write(json.dumps(summary, indent=1).encode())


if __name__ == '__main__':
    main()
