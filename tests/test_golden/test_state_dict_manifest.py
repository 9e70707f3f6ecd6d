"""The paper model's state dict has the original's names, order, shapes and dtypes.

Reference: tests/data/occflownet-state-dict-keys.json (629 keys of the original
``OccFlowNet`` built from ``occflownet_stbase_2d_flow.py``), so that the BEVDet initialisation
and checkpoints trained with the original code load by name (spec 2.12).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmdet3d.engine.runner_setup import load_config
from mmdet3d.registry import MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'occflownet' / 'occflownet_stbase_2d_flow.py'


@pytest.fixture(scope='module')
def manifest(golden_dir) -> dict:
    return json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())


@pytest.fixture(scope='module')
def model() -> torch.nn.Module:
    cfg = load_config(str(CONFIG))
    assert cfg.model.renderer.use_flow  # the manifest's config: paper model + flow renderer
    return MODELS.build(cfg.model)


def test_names_in_order_and_shapes(model, manifest):
    expected = manifest['keys']
    state = model.state_dict()
    assert len(expected) == manifest['total_keys'] == 629
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    assert not missing and not unexpected, dict(missing=missing[:10], unexpected=unexpected[:10])
    assert list(state) == list(expected)
    wrong = [(k, list(v.shape), expected[k]['shape']) for k, v in state.items()
             if list(v.shape) != expected[k]['shape']]
    assert not wrong, wrong[:10]


def test_dtypes_buffers_and_parameter_count(model, manifest):
    expected = manifest['keys']
    state = model.state_dict()
    params = dict(model.named_parameters())
    for key, value in state.items():
        assert str(value.dtype).removeprefix('torch.') == expected[key]['dtype'], key
        assert (key not in params) == expected[key]['buffer'], key
    assert len(params) == manifest['total_param_tensors']
    assert len(state) - len(params) == manifest['total_buffers']
    assert sum(p.numel() for p in params.values()) == manifest['total_param_numel']
    assert all(p.requires_grad for p in params.values())
    counts: dict[str, list[int]] = {}
    for key, value in state.items():
        entry = counts.setdefault(key.split('.')[0], [0, 0, 0])  # keys, params, numel
        entry[0] += 1
        if key in params:
            entry[1] += 1
            entry[2] += value.numel()
    assert counts == {prefix: [c['keys'], c['params'], c['numel_params']]
                      for prefix, c in manifest['prefix_counts'].items()}


@pytest.mark.parametrize('variant', ['occflownet_stbase_2d', 'occflownet_stbase_2d_flow_3d'])
def test_other_paper_variants_share_the_manifest(manifest, variant):
    """Renderer flags and the 3-D losses own no state: the same checkpoint loads into all."""
    cfg = load_config(str(CONFIG.with_name(f'{variant}.py')))
    state = MODELS.build(cfg.model).state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [
        (k, v['shape']) for k, v in manifest['keys'].items()]
