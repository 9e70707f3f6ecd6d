"""Fit and evaluate the non-learned prior occupancy baseline (per-voxel most frequent label).

    python tools/eval_prior.py [--config CFG | --train-ann PKL --val-ann PKL]
        [--path-prefix DIR] [--no-camera-mask] [--ray-iou] [--save PRIOR.npz]

With ``--config`` the train and val info pkls (and ``path_prefix``) are read from the config's
train/val dataloaders, e.g. ``configs/occflownet/occflownet_tiny_2d_flow_cpu.py``. Prints the
per-class IoU table and ``prior mIoU: x.xx`` (Occ3D mIoU, camera mask unless disabled);
``--ray-iou`` also the per-class RayIoU table and ``prior RayIoU: x.xx`` (about 0.2 s per sample
on one CPU thread; the val infos need the keyframe poses).
"""
from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import numpy as np
from tqdm import tqdm

from mmdet3d.analysis.prior_baseline import evaluate_prior, evaluate_prior_ray_iou, fit_prior
from mmdet3d.utils.file_io import atomic_open


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Prior occupancy baseline: per-voxel mode of '
                                     'the train Occ3D labels, evaluated on the val split')
    parser.add_argument('--config', help='config whose train/val dataloaders give the pkls')
    parser.add_argument('--train-ann', help='train info pkl (overrides the config)')
    parser.add_argument('--val-ann', help='val info pkl (overrides the config)')
    parser.add_argument('--path-prefix', help='joined to relative occ_path entries')
    parser.add_argument('--no-camera-mask', action='store_true',
                        help='count all voxels instead of the camera-visible ones')
    parser.add_argument('--ray-iou', action='store_true',
                        help="also evaluate SparseOcc's RayIoU (about 0.2 s per sample on one "
                        'CPU thread)')
    parser.add_argument('--save', help='write the prior volume to this .npz (key semantics)')
    return parser.parse_args()


def resolve_anns(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(train pkl, val pkl, path prefix) from the arguments and the optional config."""
    train_ann, val_ann, prefix = args.train_ann, args.val_ann, args.path_prefix
    if args.config:
        from mmdet3d.engine.runner_setup import load_config
        cfg = load_config(args.config)
        train_ds, val_ds = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
        train_ann = train_ann or os.path.join(train_ds.get('data_root', ''), train_ds.ann_file)
        val_ann = val_ann or os.path.join(val_ds.get('data_root', ''), val_ds.ann_file)
        prefix = prefix or val_ds.get('path_prefix')
    if not train_ann or not val_ann:
        sys.exit('eval_prior.py: give --config or both --train-ann and --val-ann')
    return train_ann, val_ann, prefix


def main() -> None:
    args = parse_args()
    train_ann, val_ann, prefix = resolve_anns(args)
    prior, num_train = fit_prior(train_ann, prefix)
    print(f'prior fitted on {num_train} samples of {train_ann}, grid {list(prior.shape)}')
    if args.save:
        with atomic_open(args.save) as f:
            np.savez_compressed(f, semantics=prior)
        print(f'prior volume written to {args.save}')
    metrics, num_val = evaluate_prior(prior, val_ann, prefix, not args.no_camera_mask)
    print(f'prior evaluated on {num_val} samples of {val_ann}')
    print(f'prior mIoU: {metrics["top_mIoU"]:.2f}')
    if args.ray_iou:
        ray_metrics, _ = evaluate_prior_ray_iou(
            prior, val_ann, prefix, progress=partial(tqdm, desc='prior RayIoU', unit='sample'))
        print(f'prior RayIoU: {ray_metrics["RayIoU"]:.2f}')


if __name__ == '__main__':
    main()
