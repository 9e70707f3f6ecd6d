"""Diagnose a rendering-supervised occupancy model: where LiDAR rays pass, where free space fails.

    python tools/analysis_tools/diagnose_training.py CONFIG [CKPT | --random-init]
        [--split val|train] [--max-samples N] [--tau T] [--thresholds T ...]
        [--max-rays N] [--gt-logit-scale S] [--seed S] [--json OUT.json] [--device cpu|cuda]
        [--cfg-options k=v ...]

Each sample of the split runs through the config's *training* pipeline without augmentation
(so that its LiDAR rays of all render frames, flow rows and Occ3D GT come with it), the model
predicts its density and semantic fields, and ``TrainingDiagnostics`` reports: ray coverage of
the model grid, the false-occupied rate of GT-free voxels by range, height and ray passes, the
mIoU with the GT's free space (semantics alone), the tau sweep, the model grid's ceiling, the
mIoU of the LiDAR-returns volume (what the rays show at most), the render losses of the GT
volume next to the model's on the same rays, and the key frame's depth net by LiDAR depth.
Prints the report and, with ``--json``, writes every figure. See docs/training_diagnostics.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import os.path as osp
import random
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mmdet3d.analysis.free_space import (  # noqa: E402
    occupancy_fields, ray_cell_passes, returns_volume)
from mmdet3d.analysis.render_inspection import build_model, render_rays_chunked  # noqa: E402
from mmdet3d.analysis.training_diagnostics import (  # noqa: E402
    TrainingDiagnostics, format_summary)
from mmdet3d.analysis.training_sample import prepare_sample  # noqa: E402
from mmdet3d.engine.runner_setup import load_config  # noqa: E402
from mmdet3d.models.losses.depth_loss import downsample_gt_depth  # noqa: E402
from mmdet3d.models.rendering.ray_batching import flatten_rays  # noqa: E402
from mmdet3d.models.view_transformers.frustum_geometry import depth_bin_values  # noqa: E402
from mmdet3d.registry import DATASETS  # noqa: E402
from mmdet3d.structures.lidar_rays import LidarRays  # noqa: E402
from mmdet3d.structures.voxel_grids import grid_factors, pool_majority, swap_x_z  # noqa: E402
from mmdet3d.utils import register_all_modules  # noqa: E402
from mmdet3d.utils.file_io import atomic_write_bytes  # noqa: E402

UNAUGMENTED = ('PrepareImageInputs', 'LoadAnnotationsBEVDepth')
# the `_2d` configs' dynamic classes (configs/_base_/datasets/nus-occ3d.py), where a config has
# none: returns of these classes count only from the key frame
DEFAULT_DYNAMIC_CLASSES = (0, 1, 3, 4, 5, 7, 9, 10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (.pth)')
    parser.add_argument('--random-init', action='store_true',
                        help='no checkpoint: randomly initialised weights')
    parser.add_argument('--split', choices=['val', 'train'], default='val',
                        help="the info pkl of the config's val or train dataloader")
    parser.add_argument('--max-samples', type=int, default=None,
                        help='the first N samples of the split (timestamp order)')
    parser.add_argument('--tau', type=float, default=None,
                        help='free-space threshold on sigma (default: the model\'s first)')
    parser.add_argument('--thresholds', type=float, nargs='+',
                        default=[0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 1.5, 2.5],
                        help='tau sweep')
    parser.add_argument('--max-rays', type=int, default=20000,
                        help='rays per sample rendered for the render losses (0: skip)')
    parser.add_argument('--gt-logit-scale', type=float, default=10.0,
                        help='logit of the GT class when the GT volume is rendered as a field')
    parser.add_argument('--seed', type=int, default=0, help='seed of the rendered ray subset')
    parser.add_argument('--json', help='write all figures to this JSON file')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a checkpoint or --random-init (not both)')
    return args


def diagnostic_dataset_cfg(cfg: Config, split: str) -> dict:
    """The training dataset config on ``split``'s info pkl, without augmentation, with GT.

    Augmentation is switched off (``is_train=False`` in the image and BEV augmentation steps)
    so that the rays, the model's fields and the Occ3D GT share the key ego frame.
    ``LoadOccGTFromFile`` is inserted first unless the pipeline loads the Occ3D GT (the
    ground truth is loaded before the BEV augmentation, which applies to all of it).
    """
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset['ann_file'] = cfg[f'{split}_dataloader'].dataset.ann_file
    pipeline = []
    for step in dataset['pipeline']:
        step = dict(step)
        if step['type'] in UNAUGMENTED:
            step['is_train'] = False
        pipeline.append(step)
    if not any(step['type'] == 'LoadOccGTFromFile' for step in pipeline):
        pipeline.insert(0, dict(type='LoadOccGTFromFile'))
    dataset['pipeline'] = pipeline
    return dataset


def sample_returns_volume(sample, rays: LidarRays, renderer: torch.nn.Module,
                          dynamic_classes: list[int]) -> np.ndarray | None:
    """The LiDAR-returns volume of a sample on the model grid: the key frame's returns and the
    other frames' returns on static classes (their moving objects are elsewhere at the key
    frame). None where the rays' depth is camera z (the paper configs' quirk), not range."""
    if not sample.depth_along_ray:
        return None
    keep = (rays.frame_idx == renderer.current_timestep) | ~torch.isin(
        rays.labels, torch.as_tensor(dynamic_classes, device=rays.labels.device))
    points = rays.ray_origins()[keep] + rays.depth[keep, None] * rays.directions[keep]
    return returns_volume(points, rays.labels[keep], renderer.pc_range, renderer.grid_size)


def depth_net_figures(view_transformer: torch.nn.Module, depth: torch.Tensor,
                      gt_depth: torch.Tensor) -> tuple[np.ndarray, ...]:
    """The key frame's depth net on the patches the depth loss supervises.

    Args:
        view_transformer: the model's LSS view transformer (its depth bins and stride).
        depth: (N, D, h, w) the key frame's depth distribution.
        gt_depth: (N, H, W) the key frame's sparse LiDAR depth.

    Returns:
        (P,) target bins, the most probable bins, the target bins' probabilities and their
        depths (metres), for the P patches holding a LiDAR point within the bins.
    """
    targets = downsample_gt_depth(gt_depth[None], view_transformer.downsample,
                                  view_transformer.grid_config['depth'], view_transformer.D,
                                  view_transformer.sid)  # (N*h*w, D) one-hot
    probs = depth.permute(0, 2, 3, 1).reshape(-1, depth.shape[1])  # same (n, row, col) order
    supervised = targets.sum(1) > 0
    target_bins = targets[supervised].argmax(1)
    bin_depths = depth_bin_values(view_transformer.grid_config['depth'], view_transformer.sid)
    return (target_bins.cpu().numpy(), probs[supervised].argmax(1).cpu().numpy(),
            probs[supervised].gather(1, target_bins[:, None])[:, 0].cpu().numpy(),
            bin_depths[target_bins.cpu()].numpy())


@torch.no_grad()
def diagnose_sample(model: torch.nn.Module, sample, diagnostics: TrainingDiagnostics,
                    max_rays: int, logit_scale: float, rng: np.random.Generator,
                    dynamic_classes: list[int], fields: dict | None = None) -> None:
    """Model fields, ray passes, the returns volume and (optionally) renderings of one
    prepared sample.

    ``fields``: ``density`` (1, Z, Y, X, 1) and ``semantics`` (1, Z, Y, X, K) to diagnose
    instead of the model's prediction (the model still renders them); None: the model's.
    """
    data = model.data_preprocessor(pseudo_collate([sample.packed]), False)
    inputs, (data_sample,) = data['inputs'], data['data_samples']
    if fields is None:
        voxel_feats, key_depth = model.extract_feat(inputs['img_inputs'])
        density, semantics = model.decode_fields(voxel_feats)
        fields = dict(density=density, semantics=semantics)
        diagnostics.add_depth_net(*depth_net_figures(model.img_view_transformer, key_depth,
                                                     data_sample.gt_depth))
    renderer = model.renderer
    # the fields are in the model's (B, Z, Y, X, C) layout; the diagnostics read (X, Y, Z)
    sigma = swap_x_z(renderer.density_scale * fields['density'][0, ..., 0], 0).cpu().numpy()
    classes = swap_x_z(fields['semantics'][0].argmax(-1), 0).cpu().numpy()
    sample_rays = data_sample.gt_rays
    rays = flatten_rays([sample_rays])
    passes = ray_cell_passes(rays.ray_origins(), rays.directions, rays.depth, renderer.pc_range,
                             renderer.grid_size, near=renderer.near).numpy()
    gt = sample.results['gt_occ']['semantics']
    diagnostics.add_sample(gt, sample.results['gt_occ']['mask_camera'], sigma, classes, passes,
                           sample_returns_volume(sample, rays, renderer, dynamic_classes))
    if max_rays <= 0:
        return
    chosen = torch.arange(len(rays))
    if len(rays) > max_rays:
        chosen = torch.from_numpy(np.sort(rng.choice(len(rays), max_rays, replace=False)))
    device = sample_rays.depth.device
    chosen_rays = sample_rays.select(chosen.to(device))
    gt_model_grid = pool_majority(gt, grid_factors(gt.shape, sigma.shape))
    gt_density, gt_semantics = occupancy_fields(torch.from_numpy(gt_model_grid), logit_scale)
    render_seed = int(rng.integers(2**31))
    flow = None if data_sample.get('gt_flow') is None else [data_sample.gt_flow]
    for name, density, semantics in (
            ('model', fields['density'], fields['semantics']),
            ('gt volume', gt_density.to(device), gt_semantics.to(device))):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(render_seed)  # both fields see the same sampling jitter
            depth, logits = render_rays_chunked(
                model, density, semantics, chosen_rays, flow)
        losses = model.ray_losses(depth[:, None], logits, chosen_rays)
        diagnostics.add_render(name, depth.cpu().numpy(), chosen_rays.depth.cpu().numpy(),
                               {k: float(v) for k, v in losses.items()})


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    dataset = DATASETS.build(diagnostic_dataset_cfg(cfg, args.split))
    model = build_model(cfg, args.checkpoint, args.device)
    tau = args.tau if args.tau is not None else model.eval_thresholds[0]
    diagnostics = TrainingDiagnostics(args.thresholds, tau, model.geometry.label_grid.pc_range)
    rng = np.random.default_rng(args.seed)
    dynamic_classes = list(cfg.get('dynamic_classes', DEFAULT_DYNAMIC_CLASSES))
    count = len(dataset) if args.max_samples is None else min(args.max_samples, len(dataset))
    for index in tqdm(range(count), desc=f'diagnose {args.split}', unit='sample',
                      disable=args.no_progress):
        diagnose_sample(model, prepare_sample(dataset, index), diagnostics, args.max_rays,
                        args.gt_logit_scale, rng, dynamic_classes)
    summary = diagnostics.summary()
    summary.update(config=args.config, checkpoint=args.checkpoint, split=args.split,
                   max_rays=args.max_rays, gt_logit_scale=args.gt_logit_scale)
    print(format_summary(summary))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(summary, indent=1).encode())
        print(f'figures written to {args.json}')
    return summary


if __name__ == '__main__':
    main()
