"""Train a model with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume-from CKPT | --resume]
        [--load-from CKPT] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
        [--seed N] [--deterministic] [--amp]

The work dir (default ``work_dirs/<config name>/``) receives the dumped config, a
``<timestamp>/`` folder with the text log and scalar json files, ``epoch_N.pth``,
``epoch_N_ema.pth`` (with ``MEGVIIEMAHook``) and ``last_checkpoint`` (path of the latest).
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

from mmdet3d.engine.distributed import shutdown_distributed
from mmdet3d.engine.runner_setup import apply_train_args, build_runner, load_config
from mmdet3d.utils import register_all_modules
from mmdet3d.utils.checkpoint_io import allow_nonfinite_weights
from mmdet3d.utils.host_memory import keep_freed_host_memory


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an occupancy model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument('--resume-from', help='resume training from this checkpoint')
    resume.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint of the work dir')
    parser.add_argument('--load-from', help='initial weights (non-strict; no training state)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--seed', type=int, help='random seed (config default: 0)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic cuDNN / torch algorithms')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training')
    parser.add_argument('--allow-nonfinite-weights', action='store_true',
                        help='load checkpoint weights holding NaN/inf (refused by default)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    keep_freed_host_memory()  # CPU iterations reuse freed tensors (mmdet3d/utils/host_memory.py)
    register_all_modules()
    allow_nonfinite_weights(args.allow_nonfinite_weights)
    cfg = apply_train_args(load_config(args.config, args.cfg_options), args)
    build_runner(cfg).train()
    shutdown_distributed()


if __name__ == '__main__':
    main()
