"""The paper's table in miniature: the tiny members of the three paper configs over seeds.

    python tools/analysis_tools/paper_table.py [--variants 2d 2d_flow 2d_flow_3d]
        [--seeds 0 1 2] [--work-root work_dirs/paper_table] [--epochs N] [--summary-only]
        [--cfg-options k=v ...]

For each variant and seed: ``tools/train.py configs/occflownet/occflownet_tiny_<variant>_cpu.py
--seed S --deterministic`` (the config's schedule, or ``--epochs N`` with the cosine decay over
them), then ``tools/test.py --eval mIoU RayIoU --out`` on its EMA checkpoint. A run whose
``figures.json`` exists is not repeated (resumable). Prints and writes
``<work-root>/table.md`` and ``table.json``: mIoU, RayIoU, the mean IoU of the dynamic and of
the static classes present, as mean (min-max) per variant, and whether each step between
consecutive variants exceeds the seed-to-seed spread (``mmdet3d/analysis/variant_table.py``).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmengine.config import DictAction  # noqa: E402

from mmdet3d.analysis.variant_table import (  # noqa: E402
    format_table, prediction_group_ious, summarize_runs)
from mmdet3d.engine.runner_setup import load_config  # noqa: E402
from mmdet3d.utils.file_io import atomic_open  # noqa: E402

VARIANTS = ('2d', '2d_flow', '2d_flow_3d')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-root', default='work_dirs/paper_table')
    parser.add_argument('--epochs', type=int, default=None,
                        help="training epochs (default: the config's), cosine decay over them")
    parser.add_argument('--summary-only', action='store_true',
                        help='only summarise the runs that exist')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='k=v overrides for training and testing (as tools/train.py)')
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error('--epochs must be >= 1')
    return args


def config_path(variant: str) -> str:
    return osp.join(ROOT, 'configs', 'occflownet', f'occflownet_tiny_{variant}_cpu.py')


def schedule_options(epochs: int | None) -> dict:
    """Config overrides of a schedule of ``epochs`` epochs (none: the config's own)."""
    if epochs is None:
        return {}
    return {'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs,
            'param_scheduler.1.T_max': epochs, 'param_scheduler.1.end': epochs,
            'default_hooks.checkpoint.interval': epochs}


def latest_metrics(test_dir: str) -> dict:
    """The metrics JSON of the newest run logged under ``test_dir``."""
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    if not files:
        raise FileNotFoundError(f'no test metrics (*/<timestamp>.json) under {test_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def run_one(variant: str, seed: int, args: argparse.Namespace) -> dict:
    """Train and test one run (unless its figures exist); its figures."""
    work = osp.join(args.work_root, variant, f'seed{seed}')
    figures_file = osp.join(work, 'figures.json')
    if osp.exists(figures_file):
        with open(figures_file) as f:
            return json.load(f)
    config = config_path(variant)
    options = {**schedule_options(args.epochs), **args.cfg_options}
    cfg = load_config(config, options)
    epochs = cfg.train_cfg.max_epochs
    cfg_args = ['--cfg-options', *(f'{k}={str(v).replace(" ", "")}'
                                   for k, v in options.items())] if options else []
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
                    work, '--seed', str(seed), '--deterministic', *cfg_args], check=True)
    test_dir = osp.join(work, 'test')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), config,
                    osp.join(work, f'epoch_{epochs}_ema.pth'), '--eval', 'mIoU', 'RayIoU',
                    '--out', osp.join(work, 'pred'), '--overwrite', '--work-dir', test_dir,
                    *cfg_args], check=True)
    metrics = latest_metrics(test_dir)
    groups = prediction_group_ious(osp.join(work, 'pred'), cfg.val_dataloader.dataset.ann_file,
                                   cfg.get('dynamic_classes', []))
    figures = dict(variant=variant, seed=seed, epochs=epochs, miou=metrics.get('top_mIoU'),
                   ray_iou=metrics.get('RayIoU'), **groups)
    with atomic_open(figures_file) as f:
        f.write(json.dumps(figures, indent=1).encode())
    return figures


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    runs = []
    for variant in args.variants:
        for seed in args.seeds:
            figures_file = osp.join(args.work_root, variant, f'seed{seed}', 'figures.json')
            if args.summary_only and not osp.exists(figures_file):
                continue
            runs.append(run_one(variant, seed, args))
    summary = summarize_runs(runs)
    table = format_table(summary)
    print(table)
    os.makedirs(args.work_root, exist_ok=True)
    with atomic_open(osp.join(args.work_root, 'table.md')) as f:
        f.write((table + '\n').encode())
    with atomic_open(osp.join(args.work_root, 'table.json')) as f:
        f.write(json.dumps(dict(runs=runs, summary=summary), indent=1).encode())
    return summary


if __name__ == '__main__':
    main()
