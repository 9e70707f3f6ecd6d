"""Print a config after inheritance and ``--cfg-options`` (the same checks as tools/train.py).

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

from mmdet3d.engine.runner_setup import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='Print the fully merged config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=2')
    args = parser.parse_args()
    sys.stdout.write(load_config(args.config, args.cfg_options).pretty_text + '\n')


if __name__ == '__main__':
    main()
