"""Render the key frame's LiDAR rays of one training sample and compare them with the GT.

    python tools/visualize_render.py CONFIG [CKPT | --random-init] [--sample-index I]
        [--out DIR] [--chunk N] [--max-rays-per-camera N] [--seed S] [--device cpu|cuda]
        [--cfg-options k=v ...]

Runs the training pipeline on sample I, the model in mode 'tensor' (density and semantics)
and the model's VolumeRenderer on every key-frame ray, camera by camera, ``--chunk`` rays at a
time. Writes ``<out>/<camera>.png`` (image, LiDAR depth/class, rendered depth/class at each
ray's pixel) and prints each path. See docs/visualization.md.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import random
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmdet3d.analysis.render_inspection import build_model, inspect_render  # noqa: E402
from mmdet3d.analysis.training_sample import load_training_sample  # noqa: E402
from mmdet3d.engine.runner_setup import load_config  # noqa: E402
from mmdet3d.utils import register_all_modules  # noqa: E402
from mmdet3d.visualization.render_figures import write_render_figures  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (.pth)')
    parser.add_argument('--random-init', action='store_true',
                        help='no checkpoint: randomly initialised weights')
    parser.add_argument('--sample-index', type=int, default=0,
                        help='index into the training set (timestamp order)')
    parser.add_argument('--out', help='output folder (default: work_dirs/vis_render/'
                        '<config name>/sample_<I>)')
    parser.add_argument('--chunk', type=int, default=4096, help='rays per renderer call')
    parser.add_argument('--max-rays-per-camera', type=int, default=None,
                        help='render a random subset of each camera\'s rays')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the augmentations, sampling jitter and ray subset')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.renderer.samples_per_ray=64')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a checkpoint or --random-init (not both)')
    return args


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    sample = load_training_sample(cfg, args.sample_index)
    model = build_model(cfg, args.checkpoint, args.device)
    cams = inspect_render(model, sample, args.chunk, args.max_rays_per_camera, args.seed)
    meta = sample.packed['data_samples'].metainfo
    title = f'{meta.get("scene_name", "?")} / {meta.get("sample_idx", "?")}' + \
        (' (random init)' if args.random_init else f' ({osp.basename(args.checkpoint)})')
    out = args.out or osp.join('work_dirs', 'vis_render',
                               osp.splitext(osp.basename(args.config))[0],
                               f'sample_{args.sample_index}')
    os.makedirs(out, exist_ok=True)
    paths = write_render_figures(cams, out, title)
    for path in paths:
        print(path)
    return paths


if __name__ == '__main__':
    main()
