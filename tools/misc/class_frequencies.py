"""Count a split's Occ3D voxels per class, for the render losses' class weights.

    python tools/misc/class_frequencies.py --config CFG [--mask camera|lidar|none]
    python tools/misc/class_frequencies.py --ann TRAIN.pkl [--path-prefix DIR] [--mask ...]

Prints per class the count, the class weight it gives (``class_balanced_log_weights``) next to
the weight of the original's Occ3D-nuScenes table, and the option that trains with it:
``--cfg-options model.ray_class_weights.class_frequencies=[...]`` (or the same key in a
config). With ``--config`` the train dataloader's info pkl and ``path_prefix`` are used.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tqdm import tqdm  # noqa: E402

from mmdet3d.analysis.class_frequencies import MASKS, class_voxel_counts  # noqa: E402
from mmdet3d.models.losses.class_weights import class_balanced_log_weights  # noqa: E402
from mmdet3d.structures.occ3d import CLASS_NAMES  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split = parser.add_mutually_exclusive_group(required=True)
    split.add_argument('--config', help="config whose train dataloader gives the info pkl")
    split.add_argument('--ann', help='info pkl of the split to count')
    parser.add_argument('--path-prefix', help='joined to relative occ_path entries')
    parser.add_argument('--mask', choices=MASKS, default='camera',
                        help='voxels counted: camera-visible (default), LiDAR-visible or all')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[int]:
    args = parse_args(argv)
    ann, prefix = args.ann, args.path_prefix
    if args.config:
        from mmdet3d.engine.runner_setup import load_config
        dataset = load_config(args.config).train_dataloader.dataset
        ann = os.path.join(dataset.get('data_root', ''), dataset.ann_file)
        prefix = prefix or dataset.get('path_prefix')
    counts, num = class_voxel_counts(ann, prefix, args.mask,
                                     progress=lambda x: tqdm(x, desc='count', unit='sample'))
    weights = class_balanced_log_weights(counts.tolist())
    original = class_balanced_log_weights()
    print(f'{num} samples of {ann}, {args.mask} mask')
    print(f'{"class":22s} {"voxels":>10s} {"weight":>7s} {"Occ3D table":>11s}')
    for name, count, weight, orig in zip(CLASS_NAMES, counts, weights, original):
        print(f'{name:22s} {count:10d} {weight:7.3f} {orig:11.3f}')
    values = ','.join(str(int(c)) for c in counts)
    print(f'model.ray_class_weights.class_frequencies=[{values}]')
    return counts.tolist()


if __name__ == '__main__':
    main()
