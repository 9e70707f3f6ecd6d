"""Non-strict checkpoint loading that skips mismatches and reports what it skipped (spec 2.12).

The original loads pretrained weights with mmcv's ``load_checkpoint(strict=False)``: keys missing
from the checkpoint, keys the model lacks and keys whose shapes differ are all skipped with a
warning. ``torch.nn.Module.load_state_dict(strict=False)`` still raises on shape mismatches, so
the mismatched entries are filtered out here first.
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from mmdet3d.utils.checkpoint_io import load_checkpoint_file


@dataclass
class LoadSummary:
    """What a non-strict load did, key by key.

    Attributes:
        loaded: model keys copied from the checkpoint.
        missing: model keys absent from the checkpoint (BN ``num_batches_tracked`` excluded,
            as in mmcv/mmengine).
        unexpected: checkpoint keys the model does not have.
        shape_mismatched: ``(key, checkpoint shape, model shape)`` of skipped entries.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list)

    def format(self, max_keys: int = 20) -> str:
        """Human-readable summary: counts per reason, then up to ``max_keys`` keys each."""

        def _list(keys: Sequence[str]) -> str:
            more = f' ... (+{len(keys) - max_keys})' if len(keys) > max_keys else ''
            return ', '.join(keys[:max_keys]) + more

        lines = [
            f'checkpoint load: {len(self.loaded)} loaded; skipped: '
            f'{len(self.shape_mismatched)} shape-mismatched, {len(self.missing)} missing, '
            f'{len(self.unexpected)} unexpected'
        ]
        if self.shape_mismatched:
            lines.append('shape-mismatched (checkpoint -> model): ' + _list([
                f'{k} {list(src)} -> {list(dst)}' for k, src, dst in self.shape_mismatched]))
        if self.missing:
            lines.append('missing in checkpoint: ' + _list(self.missing))
        if self.unexpected:
            lines.append('unexpected in checkpoint: ' + _list(self.unexpected))
        return '\n'.join(lines)


def load_state_dict_non_strict(model: nn.Module,
                               state_dict: Mapping[str, torch.Tensor],
                               logger: logging.Logger | str | None = 'current'
                               ) -> LoadSummary:
    """Copy every entry whose name and shape match; skip and report the rest.

    Args:
        model: target module; a model wrapper (DDP, ...) is unwrapped.
        state_dict: name -> tensor, names relative to ``model``.
        logger: where the summary goes (mmengine ``print_log``); None prints nothing.
            Defaults to 'current'.

    Returns:
        The :class:`LoadSummary`.
    """
    if is_model_wrapper(model):
        model = model.module
    own = model.state_dict()
    summary = LoadSummary()
    kept: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        if key not in own:
            summary.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            summary.shape_mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            kept[key] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        kept._metadata = metadata  # BN/version hooks read it
    model.load_state_dict(kept, strict=False)
    mismatched = {key for key, _, _ in summary.shape_mismatched}
    summary.loaded = [k for k in own if k in kept]
    summary.missing = [
        k for k in own if k not in kept and k not in mismatched
        and not k.endswith('num_batches_tracked')
    ]
    if logger is not None:
        level = logging.WARNING if (summary.missing or summary.unexpected
                                    or summary.shape_mismatched) else logging.INFO
        print_log(summary.format(), logger=logger, level=level)
    return summary


def load_checkpoint_non_strict(model: nn.Module,
                               filename: str,
                               map_location: str | torch.device = 'cpu',
                               revise_keys: Sequence[tuple[str, str]] = ((r'^module\.', ''), ),
                               logger: logging.Logger | str | None = 'current'
                               ) -> LoadSummary:
    """Load a ``.pth`` (plain state dict or a dict with ``'state_dict'``) non-strictly.

    Args:
        model: target module.
        filename: checkpoint path.
        map_location: ``torch.load`` map location. Defaults to 'cpu'.
        revise_keys: ``(pattern, replacement)`` regex substitutions applied to every key, in
            order. Defaults to stripping a leading ``module.``.
        logger: see :func:`load_state_dict_non_strict`. Defaults to 'current'.

    Returns:
        The :class:`LoadSummary`.
    """
    checkpoint = load_checkpoint_file(filename, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'{filename} holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    revised: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    return load_state_dict_non_strict(model, revised, logger=logger)
