"""Evaluate a checkpoint on the test split.

    python tools/test.py CONFIG CKPT --eval mIoU [RayIoU] [--out DIR [--overwrite]]
        [--work-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

``--eval mIoU`` logs the per-class IoU table and the mIoU of every density threshold;
``--eval RayIoU`` the per-class RayIoU@1/2/4 table and RayIoU (SparseOcc's ray-based metric,
first density threshold; ray origins from the keyframe poses of the test ``ann_file``); both
can be given for one pass over the split. ``--out DIR`` writes
``DIR/<scene>/<token>.npz`` (key ``semantics``, the first threshold's (X, Y, Z) uint8 labels);
``--out`` without ``--eval`` only writes predictions (no ground truth needed).

``--out DIR`` never mixes or deletes data: it is refused before anything is built when ``DIR``
or ``DIR.partial`` exists and is not empty, unless ``--overwrite``, which replaces ``DIR`` as a
whole (logging how many files it held) once the whole split is predicted. Predictions wait in
a new folder ``DIR.partial-XXXXXXXX`` that becomes ``DIR`` by a rename; a failed run leaves
``DIR`` untouched and its staging folder in place (named in a message at exit).
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

from mmdet3d.engine.distributed import shutdown_distributed
from mmdet3d.engine.runner_setup import EVAL_METRICS, apply_test_args, load_config, run_test
from mmdet3d.utils import register_all_modules
from mmdet3d.utils.checkpoint_io import allow_nonfinite_weights
from mmdet3d.utils.host_memory import keep_freed_host_memory


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an occupancy model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint, e.g. work_dirs/<cfg>/epoch_12_ema.pth')
    parser.add_argument('--eval', nargs='+', choices=list(EVAL_METRICS),
                        help='metrics to compute, e.g. --eval mIoU RayIoU')
    parser.add_argument('--out', help='folder for per-sample prediction files (refused if it '
                        'is not empty, unless --overwrite)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a non-empty --out folder as a whole with the new '
                        'predictions')
    parser.add_argument('--work-dir', help='where the test log goes')
    parser.add_argument('--allow-nonfinite-weights', action='store_true',
                        help='load checkpoint weights holding NaN/inf (refused by default)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. test_dataloader.num_workers=0')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--non-strict', action='store_true',
                        help='evaluate even if checkpoint and model keys differ (logged)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    keep_freed_host_memory()  # CPU iterations reuse freed tensors (mmdet3d/utils/host_memory.py)
    register_all_modules()
    allow_nonfinite_weights(args.allow_nonfinite_weights)
    cfg = apply_test_args(load_config(args.config, args.cfg_options), args)
    run_test(cfg, strict=not args.non_strict)
    shutdown_distributed()


if __name__ == '__main__':
    main()
