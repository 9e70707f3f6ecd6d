"""The tiny OccFlowNet of the golden vectors, built from one config for tests and benchmarks."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config
from torch import nn

from mmdet3d.engine.runner_setup import distribute_geometry
from mmdet3d.registry import MODELS

#: The golden tiny model (2 cameras, 64x192 input, 32x32x8 grid); ships with the repository.
TINY_MODEL_CONFIG = (Path(__file__).resolve().parents[2] / 'configs' / 'occflownet' / 'golden' /
                     'occflownet_golden-tiny.py')


def tiny_model_config(geometry: Mapping[str, Any] | None = None, **overrides) -> Config:
    """The tiny config with ``geometry`` and ``model`` overrides merged in (nested dicts are
    merged), its geometry handed to the model (``distribute_geometry``)."""
    if not TINY_MODEL_CONFIG.is_file():
        raise FileNotFoundError(f'tiny model config not found: {TINY_MODEL_CONFIG} '
                                '(mmdet3d.testing needs the repository checkout, e.g. an '
                                'editable install)')
    cfg = Config.fromfile(str(TINY_MODEL_CONFIG))
    cfg.merge_from_dict(dict(geometry=dict(geometry or {}), model=overrides))
    return distribute_geometry(cfg)


def build_tiny_model(geometry: Mapping[str, Any] | None = None, **overrides) -> nn.Module:
    """The tiny OccFlowNet (freshly initialised) with ``geometry`` and ``model`` config
    overrides."""
    return MODELS.build(tiny_model_config(geometry, **overrides).model)
