"""Write the OccFlowNet info pkls ``<out-dir>/<tag>[-mini]_infos_{train,val}.pkl`` (spec 5.1).

Example (real data, from the repository root)::

    python tools/create_data_bevdet.py --root-path ./data/nuscenes --version v1.0-trainval

See docs/data_preparation.md for the layout and the demo-set commands.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet3d.datasets.converters.nuscenes_infos import (  # noqa: E402
    VERSIONS, create_infos, default_occ_root, load_nuscenes, write_infos)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root-path', default='./data/nuscenes',
                        help='nuScenes dataroot (with panoptic); stored paths start with it')
    parser.add_argument('--version', default='v1.0-trainval', choices=VERSIONS)
    parser.add_argument('--out-dir', default='./data', help='folder of the info pkls')
    parser.add_argument('--extra-tag', default='bevdetv2-nuscenes',
                        help='file prefix; "-mini" is appended for v1.0-mini')
    parser.add_argument('--occ-root', default=None,
                        help='Occ3D gts folder written into occ_path; default: <root-path>/gts '
                        'if it exists, else <root-path>/../gts (./data/gts for the defaults)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    occ_root = args.occ_root if args.occ_root is not None else default_occ_root(args.root_path)
    logging.info('loading %s from %s; occ_path root %s', args.version, args.root_path, occ_root)
    nusc = load_nuscenes(args.root_path, args.version)
    infos = create_infos(nusc, args.version, occ_root,
                         progress=partial(tqdm, desc='samples', unit='sample'))
    for path in write_infos(infos, args.out_dir, args.extra_tag, args.version):
        logging.info('wrote %s', path)
    missing = [info['occ_path'] for split in infos.values() for info in split
               if not os.path.isfile(os.path.join(info['occ_path'], 'labels.npz'))]
    if missing:
        logging.warning('%d samples have no Occ3D labels.npz, e.g. %s/labels.npz', len(missing),
                        missing[0])


if __name__ == '__main__':
    main()
