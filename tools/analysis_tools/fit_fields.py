"""Fit free voxel fields to a config's supervision, without the network: what do the losses ask for?

    python tools/analysis_tools/fit_fields.py CONFIG [--split val|train] [--max-samples N]
        [--iters 300] [--lr 0.1] [--init-logit -5] [--tau T] [--max-rays N] [--seed S]
        [--json OUT.json] [--cfg-options k=v ...]

For each sample of the split (the config's training pipeline without augmentation, as
``diagnose_training.py`` prepares it), a density logit and K semantic logits per model cell are
optimised with Adam for ``--iters`` steps on ``OccFlowNet.field_losses``: the config's render
losses, density prior and 3-D losses, each step on a fresh draw of the model's ray batch
(``OccFlowNet.select_rays``). The fitted fields are then scored like a model by
``TrainingDiagnostics`` (mIoU, per class, tau sweep, the grid ceiling and the LiDAR-returns
volume next to them). There is no image encoder, so no capacity, resolution or training-length
limit: a class the fitted fields miss is one the supervision itself does not ask for at this
grid (docs/training_diagnostics.md).
The network's own weights are not used (nor loaded).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import random
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mmdet3d.analysis.render_inspection import build_model  # noqa: E402
from mmdet3d.analysis.training_diagnostics import TrainingDiagnostics, format_summary  # noqa: E402
from mmdet3d.analysis.training_sample import prepare_sample  # noqa: E402
from mmdet3d.engine.runner_setup import load_config  # noqa: E402
from mmdet3d.registry import DATASETS  # noqa: E402
from mmdet3d.structures.occ3d import NUM_SEMANTIC_CLASSES  # noqa: E402
from mmdet3d.utils import register_all_modules  # noqa: E402
from mmdet3d.utils.file_io import atomic_write_bytes  # noqa: E402
from tools.analysis_tools.diagnose_training import (  # noqa: E402
    DEFAULT_DYNAMIC_CLASSES, diagnose_sample, diagnostic_dataset_cfg)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', choices=['val', 'train'], default='val',
                        help="the info pkl of the config's val or train dataloader")
    parser.add_argument('--max-samples', type=int, default=None,
                        help='the first N samples of the split (timestamp order)')
    parser.add_argument('--iters', type=int, default=300, help='Adam steps per sample')
    parser.add_argument('--lr', type=float, default=0.1, help='Adam learning rate of the logits')
    parser.add_argument('--init-logit', type=float, default=-5.0,
                        help='initial density logit (sigmoid -5 = 0.007: free)')
    parser.add_argument('--tau', type=float, default=None,
                        help="free-space threshold on sigma (default: the model's first)")
    parser.add_argument('--thresholds', type=float, nargs='+',
                        default=[0.1, 0.35, 1.0, 2.0], help='tau sweep')
    parser.add_argument('--max-rays', type=int, default=0,
                        help='rays per sample rendered for the render-loss comparison (0: skip)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write all figures to this JSON file')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    if args.iters < 1 or (args.max_samples is not None and args.max_samples < 1):
        parser.error('--iters and --max-samples must be >= 1')
    return args


def fit_sample_fields(model: torch.nn.Module, data_samples: list, iters: int, lr: float,
                      init_logit: float, progress: bool = True) -> tuple[dict, dict]:
    """Adam on free (1, Z, Y, X, 1) density logits and (1, Z, Y, X, K) semantic logits,
    supervised by the ground truth of ``data_samples`` (one preprocessed data sample).

    Returns:
        the fitted fields (``density`` = sigmoid of the logits, ``semantics``) and the last
        step's losses (floats).
    """
    size_z, size_y, size_x = (int(v) for v in model.renderer.grid_size[::-1])
    num_classes = NUM_SEMANTIC_CLASSES
    density_logit = torch.full((1, size_z, size_y, size_x, 1), float(init_logit),
                               requires_grad=True)
    semantics = torch.zeros((1, size_z, size_y, size_x, num_classes), requires_grad=True)
    optimizer = torch.optim.Adam([density_logit, semantics], lr=lr)
    for _ in tqdm(range(iters), desc='fit', unit='step', leave=False, disable=not progress):
        losses = model.field_losses(torch.sigmoid(density_logit), semantics, data_samples)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    fields = dict(density=torch.sigmoid(density_logit).detach(), semantics=semantics.detach())
    return fields, {k: round(float(v.detach()), 4) for k, v in losses.items()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    dataset = DATASETS.build(diagnostic_dataset_cfg(cfg, args.split))
    model = build_model(cfg, None, 'cpu')
    tau = args.tau if args.tau is not None else model.eval_thresholds[0]
    diagnostics = TrainingDiagnostics(args.thresholds, tau, model.geometry.label_grid.pc_range)
    rng = np.random.default_rng(args.seed)
    dynamic_classes = list(cfg.get('dynamic_classes', DEFAULT_DYNAMIC_CLASSES))
    count = len(dataset) if args.max_samples is None else min(args.max_samples, len(dataset))
    final_losses = []
    for index in tqdm(range(count), desc=f'fit {args.split}', unit='sample',
                      disable=args.no_progress):
        sample = prepare_sample(dataset, index)
        data_samples = model.data_preprocessor(pseudo_collate([sample.packed]),
                                               False)['data_samples']
        fields, losses = fit_sample_fields(model, data_samples, args.iters, args.lr,
                                           args.init_logit, not args.no_progress)
        final_losses.append(losses)
        diagnose_sample(model, sample, diagnostics, args.max_rays, 10.0, rng, dynamic_classes,
                        fields=fields)
    summary = diagnostics.summary()
    summary.update(config=args.config, split=args.split, iters=args.iters, lr=args.lr,
                   init_logit=args.init_logit, final_losses=final_losses)
    print(format_summary(summary))
    print('  last step losses per sample: ' + '; '.join(
        ', '.join(f'{k} {v:.3f}' for k, v in losses.items()) for losses in final_losses))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(summary, indent=1).encode())
        print(f'figures written to {args.json}')
    return summary


if __name__ == '__main__':
    main()
