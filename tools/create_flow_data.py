"""Write the occupancy-flow ground truth ``<out-dir>/<scene_name>/<token>.npz`` (spec 5.2).

Reads ``<info-dir>/<tag>[-mini]_infos_{train,val}.pkl`` (train first, then val). Existing files
are kept unless ``--overwrite``, so an interrupted run resumes where it stopped.

Example::

    python tools/create_flow_data.py --info-dir data --out-dir data/flow --workers 8
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet3d.datasets.converters.flow_gt import (  # noqa: E402
    FLOW_INFO_KEYS, pending_indices, sort_infos, write_flow)
from mmdet3d.datasets.converters.nuscenes_infos import VERSIONS, info_path  # noqa: E402
from mmdet3d.formats.info_pkl import load_infos  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--info-dir', default='./data', help='folder of the info pkls')
    parser.add_argument('--version', default='v1.0-trainval', choices=VERSIONS)
    parser.add_argument('--extra-tag', default='bevdetv2-nuscenes',
                        help='info file prefix; "-mini" is appended for v1.0-mini')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'])
    parser.add_argument('--out-dir', default='./data/flow')
    parser.add_argument('--horizon', type=int, default=3, help='keyframes on each side')
    parser.add_argument('--wlh-factor', type=float, default=1.15,
                        help='box size factor (then +0.4 m) of the inside test')
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='worker processes; 0 runs in the main process')
    parser.add_argument('--overwrite', action='store_true', help='recompute existing files')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if args.horizon < 1:
        raise SystemExit(f'--horizon must be >= 1, got {args.horizon}')
    for split in args.splits:
        path = info_path(args.info_dir, args.extra_tag, args.version, split)
        infos = sort_infos(load_infos(path, required_keys=FLOW_INFO_KEYS)[0])
        todo = pending_indices(infos, args.out_dir, args.overwrite)
        logging.info('%s: %d samples, %d to write, %d kept', path, len(infos), len(todo),
                     len(infos) - len(todo))
        rows = 0
        jobs = write_flow(infos, todo, args.out_dir, args.horizon, args.wlh_factor, args.workers)
        for n in tqdm(jobs, total=len(todo), desc=split, unit='sample'):
            rows += n
        logging.info('%s: wrote %d files, %d flow rows, into %s', split, len(todo), rows,
                     args.out_dir)


if __name__ == '__main__':
    main()
