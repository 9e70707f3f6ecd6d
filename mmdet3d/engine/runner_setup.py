"""Reusable logic of ``tools/train.py`` and ``tools/test.py``: config loading and checking,
applying command-line options, and building the mmengine Runner."""
from __future__ import annotations

import argparse
import copy
import difflib
import os.path as osp
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.runner import Runner

from mmdet3d.formats.occ3d_labels import check_occ_gt_headers
from mmdet3d.registry import RUNNERS
from mmdet3d.structures.occ_geometry import OccGeometry, with_geometry

from mmdet3d.utils.checkpoint_io import (load_checkpoint_file,
                                         route_mmengine_checkpoint_loading)
from .cfg_keywords import callable_keywords, copies_of, dict_keys_read, spread_keywords
from .distributed import init_cpu_distributed
from .hooks.random_state_hook import RandomStateHook

#: top-level keys that mmengine's Runner reads although a config need not define them
RUNNER_KEYS = frozenset(
    ('model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
     'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
     'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
     'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
     'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg', 'sync_bn',
     'find_unused_parameters', 'compile', 'activation_checkpointing', 'efficient_conv_bn_eval',
     'runner_type', 'custom_imports'))


def _suggest(key: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, [str(c) for c in candidates], n=3)
    return f'; did you mean {" or ".join(repr(c) for c in close)}?' if close else ''


def constructor_keywords(type_: Any, runner_cls: type | None = Runner) -> list[str] | None:
    """Argument names that the config dict of a ``type`` may hold, or None when they cannot be
    known before the build (the type is unknown or ambiguous across the registries, or takes
    ``**kwargs`` that go somewhere open-ended).

    ``**kwargs`` are followed through the code (:mod:`mmdet3d.engine.cfg_keywords`): along
    ``super().__init__(**kwargs)`` into the bases (mmengine's ``LinearLR`` accepts what
    ``LinearParamScheduler`` does, less the ``param_name`` that ``LRSchedulerMixin`` sets) and
    into the calls that spread them (``CheckpointHook`` into ``runner.save_checkpoint``, resolved
    on ``runner_cls``). Keys that the registry's build function takes out of the dict (e.g.
    ``convert_to_iter_based`` of the parameter schedulers) count as accepted.
    """
    registries = _config_registries()
    if isinstance(type_, str):
        found = {id(c): c for c in (registry.get(type_) for registry in registries)
                 if c is not None}
        if len(found) != 1:
            return None
        type_ = next(iter(found.values()))
    name = getattr(type_, '__name__', None)
    accepted = callable_keywords(type_, runner_cls)
    if accepted is None:
        return None
    for registry in registries:
        if name is not None and registry.get(name) is type_:
            accepted |= dict_keys_read(registry.build_func)
    accepted.discard('self')
    return sorted(accepted)


def _config_registries() -> list:
    from mmdet3d import registry
    return [value for value in vars(registry).values() if isinstance(value, Registry)]


#: the Runner arguments that it builds with ``build_dataloader``
DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _runner_class(cfg: Config) -> type | None:
    """The Runner class that :func:`build_runner` builds for ``cfg`` (None if unknown)."""
    runner_type = cfg.get('runner_type')
    if runner_type is None:
        return Runner
    if isinstance(runner_type, str):
        return RUNNERS.get(runner_type)
    return runner_type if isinstance(runner_type, type) else None


def dataloader_keywords(runner_cls: type | None = Runner) -> list[str] | None:
    """Keys a ``*_dataloader`` dict may hold: those that ``runner_cls.build_dataloader`` takes
    out (``sampler``, ``collate_fn``, ``num_batch_per_epoch``, ...) and the arguments of the
    ``DataLoader`` it spreads the rest into. None when that cannot be read."""
    build = getattr(runner_cls, 'build_dataloader', None)
    accepted = spread_keywords(build, 0, runner_cls) if build is not None else None
    return None if accepted is None else sorted(accepted)


def _refuse_copied_variable(cfg: Config, full_key: str, parts: list[str]) -> None:
    """Refuse an option on a top-level variable of the config file (not read by the Runner)
    whose value, or the value at a prefix of the key, other entries hold a copy of: those
    copies were taken when the config file was executed, so the override would not reach
    them."""
    if parts[0] in RUNNER_KEYS or parts[0] not in cfg._cfg_dict:
        return
    copies, reported, example = [], [], None
    node: Any = cfg._cfg_dict
    for depth, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            break
        places = [p for p in copies_of(cfg._cfg_dict, node, parts[0],
                                       lambda top: top in RUNNER_KEYS)
                  if not any(p.startswith(q + '.') for q in reported)]
        if places:
            reported.extend(places)
            copies.append(f'{".".join(parts[:depth + 1])} into {", ".join(places)}')
            example = example or '.'.join([places[0], *parts[depth + 1:]])
    if copies:
        raise KeyError(
            f'--cfg-options {full_key}: {parts[0]} is a variable of the config file, which '
            f'nothing reads at run time; these entries hold its value, copied when the config '
            f'file was read: {"; ".join(copies)}. Set it there (e.g. --cfg-options '
            f'{example}=...) or edit the config file')


def check_cfg_options(cfg: Config, options: Mapping[str, Any]) -> None:
    """Reject ``--cfg-options`` keys that cannot be meant for this config or would not take
    effect.

    Every component of a dotted key must exist, except the last one
    - below a dict with a ``type``, which must be an argument that the type accepts (see
      :func:`constructor_keywords`; not checked where that cannot be known);
    - below ``train/val/test_dataloader``, which may be any key that the Runner's
      ``build_dataloader`` understands (:func:`dataloader_keywords`: ``DataLoader`` arguments
      such as ``pin_memory`` and mmengine's own).
    A top-level key may also be one that the Runner reads (:data:`RUNNER_KEYS`). A key on a
    top-level variable of the config file that other entries copied when the file was executed
    (e.g. ``data_config``, copied into the pipelines) is refused, naming the copies.

    Raises:
        KeyError: naming the offending key and the closest existing names, or the copies.
    """
    runner_cls = _runner_class(cfg)
    for full_key in options:
        parts = full_key.split('.')
        node: Any = cfg._cfg_dict
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise KeyError(f'--cfg-options {full_key}: {part!r} is not an index of the '
                                   f'{len(node)}-element list at {".".join(parts[:depth])}')
                node = node[int(part)]
                continue
            if not isinstance(node, Mapping):
                raise KeyError(f'--cfg-options {full_key}: {".".join(parts[:depth])} is a '
                               f'{type(node).__name__}, not a dict')
            if part in node:
                node = node[part]
                continue
            if depth == 0 and part in RUNNER_KEYS:
                break
            if last and 'type' in node:
                accepted = constructor_keywords(node['type'], runner_cls)
                if accepted is None or part in accepted:
                    break
                raise KeyError(f'--cfg-options {full_key}: {node["type"]!r} at '
                               f'{".".join(parts[:depth])} takes no argument {part!r}'
                               f'{_suggest(part, accepted)}')
            where = '.'.join(parts[:depth]) or 'the config'
            if last and depth == 1 and parts[0] in DATALOADER_KEYS:
                accepted = dataloader_keywords(runner_cls)
                if accepted is None or part in accepted:
                    break
                raise KeyError(f'--cfg-options {full_key}: {where} has no key {part!r} and it '
                               f'is no argument of the DataLoader that '
                               f'{getattr(runner_cls, "__name__", "the Runner")}'
                               f'.build_dataloader builds'
                               f'{_suggest(part, sorted({*node.keys(), *accepted}))}')
            raise KeyError(f'--cfg-options {full_key}: {where} has no key {part!r}'
                           f'{_suggest(part, list(node.keys()))}')
        _refuse_copied_variable(cfg, full_key, parts)


def load_config(config: str, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """Read a config file, merge checked ``--cfg-options`` into it and hand its geometry to the
    components (:func:`distribute_geometry`).

    Raises:
        FileNotFoundError: the config file does not exist.
        KeyError: an option key does not match the config (see :func:`check_cfg_options`), or
            the geometry's keys are wrong.
        ValueError: a component sets a geometry of its own that differs, or a geometry value
            is invalid.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        _take_back_geometry(cfg)
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(dict(cfg_options))
    return distribute_geometry(cfg)


def _geometry_holders(cfg: Config) -> list[tuple[str, Mapping]]:
    """(name, config) of the components that take the geometry: the model and the datasets."""
    holders = [('model', cfg.get('model'))]
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        holders.append((f'{key}.dataset',
                        loader.get('dataset') if isinstance(loader, Mapping) else None))
    return [(name, holder) for name, holder in holders if isinstance(holder, Mapping)]


def _take_back_geometry(cfg: Config) -> None:
    """Remove the components' copies of the top-level geometry (a config written after
    :func:`distribute_geometry`, e.g. the one in a work dir), so that ``geometry.*`` options
    reach them again."""
    geometry = cfg.get('geometry')
    for _, holder in _geometry_holders(cfg):
        if geometry is not None and holder.get('geometry') == geometry:
            holder.pop('geometry')


def distribute_geometry(cfg: Config) -> Config:
    """Hand the config's top-level ``geometry`` (the ``OccGeometry`` config dict) to ``model``
    and to the ``dataset`` of each ``*_dataloader``, in place; the dataset hands it on to its
    pipeline steps, the model to its view transformer and renderer. A config without a
    ``geometry`` is returned unchanged.

    Raises:
        KeyError, ValueError: the geometry is invalid (:meth:`OccGeometry.build`).
        ValueError: naming a component that sets a different geometry of its own.
    """
    geometry = cfg.get('geometry')
    if geometry is None:
        return cfg
    OccGeometry.build(geometry)
    geometry = geometry.to_dict() if hasattr(geometry, 'to_dict') else dict(geometry)
    for name, holder in _geometry_holders(cfg):
        holder.update(with_geometry(holder, copy.deepcopy(geometry), name))
    return cfg


def _require_file(path: str | None, what: str) -> None:
    if path is not None and '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')


def _set_work_dir(cfg: Config, config: str, work_dir: str | None) -> None:
    """CLI > config > ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config))[0])


def _set_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher; on CPU start gloo and wrap DDP without device ids."""
    cfg.launcher = launcher
    if init_cpu_distributed(launcher):
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', False)
        cfg.model_wrapper_cfg = wrapper


def apply_train_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/train.py`` options (see its ``--help``) to ``cfg`` in place."""
    _set_work_dir(cfg, args.config, args.work_dir)
    if args.load_from is not None and (args.resume_from is not None or args.resume):
        raise ValueError('--load-from initialises weights only; it cannot be combined with '
                         '--resume/--resume-from (which restore the whole training state)')
    if args.resume_from is not None:
        _require_file(args.resume_from, '--resume-from checkpoint')
        _require_resumable(args.resume_from)
        cfg.resume, cfg.load_from = True, args.resume_from
    elif args.resume:
        cfg.resume, cfg.load_from = True, None
    if args.load_from is not None:
        _require_file(args.load_from, '--load-from checkpoint')
        cfg.load_from = args.load_from
    if not cfg.get('resume', False):
        _require_file(cfg.get('load_from'), 'load_from checkpoint')
    randomness = dict(cfg.get('randomness') or {})
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.deterministic:
        randomness['deterministic'] = True
    cfg.randomness = randomness
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') in ('RandomStateHook', RandomStateHook) for h in hooks):
        cfg.custom_hooks = [*hooks, dict(type='RandomStateHook')]
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise ValueError(f'--amp: optim_wrapper type is {cfg.optim_wrapper.type}, expected '
                             'OptimWrapper')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        # float16 overflows in the paper model (NaN depth at the first iteration, measured with
        # tools/benchmarks/bench_model.py on an H200); bfloat16 has float32's range.
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    _set_launcher(cfg, args.launcher)
    return cfg


def _require_resumable(path: str) -> None:
    """Refuse a checkpoint without the training state that mmengine's resume restores."""
    checkpoint = load_checkpoint_file(path, map_location='cpu', mmap=zipfile.is_zipfile(path),
                                      allow_nonfinite=True)  # the resume itself checks them
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if isinstance(meta, Mapping) and 'epoch' in meta and 'optimizer' in checkpoint:
        return
    keys = ', '.join(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(
        checkpoint).__name__
    kind = ('the EMA weights written by MEGVIIEMAHook' if 'updates' in checkpoint else
            'weights only') if isinstance(checkpoint, Mapping) else 'not a checkpoint dict'
    raise ValueError(
        f'--resume-from {path} holds no training state to resume from (keys: {keys}; '
        f'{kind}). Resume from an epoch_N.pth written by the training loop, or pass this file '
        f'as --load-from to start a new run from its weights')


#: ``tools/test.py --eval`` names -> registered metric types
EVAL_METRICS = {'mIoU': 'OccMetric', 'RayIoU': 'RayIoUMetric'}


def apply_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/test.py`` options: checkpoint, evaluation, prediction saving, launcher.

    ``test_evaluator`` becomes the config's ``OccMetric`` (``--out`` sets its ``save_dir``;
    without ``--eval mIoU`` it only saves) and, for ``--eval RayIoU``, a ``RayIoUMetric`` on
    the test dataset's ``ann_file``: one dict for one metric, else a list. ``--out DIR`` is
    refused when ``DIR`` or ``DIR.partial`` exists and is not empty, unless ``--overwrite``
    (``args.overwrite``; then ``DIR`` is replaced as a whole, see ``OccMetric``).
    """
    _require_file(args.checkpoint, 'checkpoint')
    _set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from, cfg.resume = args.checkpoint, False
    selected = [args.eval] if isinstance(args.eval, str) else list(args.eval or [])
    unknown = [name for name in selected if name not in EVAL_METRICS]
    if unknown:
        raise ValueError(f'--eval {unknown}: choose from {list(EVAL_METRICS)}')
    if not selected and args.out is None:
        raise ValueError('tools/test.py needs --eval mIoU and/or RayIoU, and/or --out DIR')
    evaluators = []
    if 'mIoU' in selected or args.out is not None:
        evaluator = cfg.get('test_evaluator')
        if evaluator is None:
            evaluator = dict(type='OccMetric')
        if not (isinstance(evaluator, Mapping) and evaluator.get('type') == 'OccMetric'):
            raise ValueError(f'tools/test.py expects test_evaluator = dict(type="OccMetric", '
                             f'...), got {evaluator}')
        evaluator = dict(evaluator)
        if args.out is not None:
            evaluator['save_dir'] = args.out
            if _check_out_dir(args.out, getattr(args, 'overwrite', False)):
                evaluator['overwrite'] = True
        evaluator['format_only'] = 'mIoU' not in selected
        evaluators.append(evaluator)
    if 'RayIoU' in selected:
        evaluators.append(_ray_iou_evaluator(cfg))
    cfg.test_evaluator = evaluators[0] if len(evaluators) == 1 else evaluators
    _set_launcher(cfg, args.launcher)
    return cfg


def _check_out_dir(out: str, overwrite: bool) -> bool:
    """Refuse ``--out`` before anything heavy where writing would lose or mix data (see
    :func:`~mmdet3d.formats.occ_predictions.check_prediction_dir`); under ``--overwrite``
    log what will be replaced. Returns ``overwrite``."""
    import logging

    from mmengine.logging import print_log

    from mmdet3d.formats.occ_predictions import check_prediction_dir
    replaced = check_prediction_dir(out, overwrite)
    if overwrite:
        partial = osp.normpath(out) + '.partial'
        print_log(f'--overwrite: {out} ' + (
            f'holds {replaced} files; they are replaced as a whole by this run\'s predictions '
            'once the whole split is predicted' if replaced else 'holds no files') + (
            f'; {partial} is left as it is' if osp.lexists(partial) else ''),
            logger='current', level=logging.WARNING if replaced else logging.INFO)
    return overwrite


def _ray_iou_evaluator(cfg: Config) -> dict:
    """``RayIoUMetric`` config on the test dataset's info pkl (it holds the keyframe poses)."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    if not dataset.get('ann_file'):
        raise ValueError('--eval RayIoU reads the keyframe poses from the info pkl of '
                         'test_dataloader.dataset.ann_file, which this config does not set '
                         f'(dataset {dataset.get("type")})')
    return dict(type=EVAL_METRICS['RayIoU'], ann_file=dataset['ann_file'],
                data_root=dataset.get('data_root') or '')


def build_runner(cfg: Config) -> Runner:
    """Build the Runner (``runner_type`` if set) with checkpoint unpickling allowed."""
    route_mmengine_checkpoint_loading()
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def run_test(cfg: Config, strict: bool = True) -> dict:
    """Load ``cfg.load_from`` into the model and run the test loop.

    Args:
        cfg: a config prepared by :func:`apply_test_args`.
        strict: fail (naming the keys) unless the checkpoint's weights and the model's match
            exactly; evaluating a partly initialised model is never meant. Defaults to True.

    Returns:
        The metrics of the test loop.
    """
    runner = build_runner(cfg)
    runner.load_checkpoint(cfg.load_from, map_location='cpu', strict=strict)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, Mapping):
        evaluators = [evaluators]
    if not all(evaluator.get('format_only', False) for evaluator in evaluators):
        geometry = cfg.model.get('geometry')
        check_split_ground_truth(runner.test_loop.dataloader.dataset, None if geometry is None
                                 else OccGeometry.build(geometry).label_grid.shape)
    return runner.test()


def check_split_ground_truth(dataset: Any, shape: tuple[int, ...] | None = None) -> int:
    """Check the Occ3D GT file of every sample of ``dataset`` that names one
    (``occ_path``), before inference: readable, the three arrays, one shape (``shape``, or
    the first file's), integer dtypes. Headers only: a few milliseconds per file.

    Returns:
        The number of files checked.

    Raises:
        FileNotFoundError, OccGTError: naming the first bad file and its sample token.
    """
    files = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        if info.get('occ_path'):
            files.append((info['occ_path'], info.get('sample_idx')))
    check_occ_gt_headers(files, shape)
    return len(files)
