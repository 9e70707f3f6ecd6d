"""The schedule base (configs/_base_/schedules/adamw-12e.py) against the original's formulas."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from torch import nn

from mmdet3d.registry import OPTIM_WRAPPERS, PARAM_SCHEDULERS

pytestmark = pytest.mark.filterwarnings('ignore:Detected call of')

SCHEDULE = Path(__file__).resolve().parents[2] / 'configs/_base_/schedules/adamw-12e.py'


@pytest.fixture
def cfg() -> Config:
    return Config.fromfile(SCHEDULE)


def _build(cfg: Config, params: list[nn.Parameter]):
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict())
    optimizer = torch.optim.AdamW(params, **{k: v for k, v in wrapper_cfg.pop('optimizer')
                                             .items() if k != 'type'})
    wrapper = OPTIM_WRAPPERS.build(dict(wrapper_cfg, optimizer=optimizer))
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
                  for s in copy.deepcopy(cfg.param_scheduler)]
    return wrapper, schedulers


def test_optimizer_settings(cfg):
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-2)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5, norm_type=2)
    assert cfg.train_cfg.max_epochs == 12
    ema = [h for h in cfg.custom_hooks if h.type == 'MEGVIIEMAHook']
    assert len(ema) == 1 and ema[0].init_updates == 10560 and ema[0].decay == 0.999


def test_linear_warmup_then_constant(cfg):
    wrapper, schedulers = _build(cfg, [nn.Parameter(torch.zeros(1))])
    warmup = [s for s in schedulers if not s.by_epoch]
    assert len(warmup) == 1
    lrs = []
    for _ in range(260):  # iterations, as ParamSchedulerHook steps iteration-based schedulers
        lrs.append(wrapper.param_groups[0]['lr'])
        warmup[0].step()
    for i, lr in enumerate(lrs):
        # spec 1.4: lr = 1e-4 * (1 - 0.999 * (1 - i / 200)) during the first 200 iterations
        expected = 1e-4 * (1 - 0.999 * (1 - i / 200)) if i < 200 else 1e-4
        assert lr == pytest.approx(expected, rel=1e-6, abs=1e-12), i


def test_step_decay_is_epoch_based_at_epoch_100(cfg):
    wrapper, schedulers = _build(cfg, [nn.Parameter(torch.zeros(1))])
    step = [s for s in schedulers if s.by_epoch]
    assert len(step) == 1 and list(step[0].milestones) == [100] and step[0].gamma == 0.1
    lrs = []
    for _ in range(102):  # epochs
        lrs.append(wrapper.param_groups[0]['lr'])
        step[0].step()
    assert lrs[99] == pytest.approx(1e-4 * 0.001)  # warm-up factor untouched (not stepped)
    assert lrs[100] == pytest.approx(1e-4 * 0.001 * 0.1)


def test_grad_norm_clipping_to_5(cfg):
    p = nn.Parameter(torch.zeros(2))
    wrapper, _ = _build(cfg, [p])
    MessageHub.get_instance('test_clip')
    loss = (p * torch.tensor([30.0, 40.0])).sum()  # gradient (30, 40), L2 norm 50
    wrapper.backward(loss)
    wrapper.step()
    # scaled by max_norm / (norm + 1e-6), torch's clip_grad_norm_ formula
    torch.testing.assert_close(p.grad, torch.tensor([30.0, 40.0]) * 5 / (50 + 1e-6))
    small = nn.Parameter(torch.zeros(2))
    wrapper, _ = _build(cfg, [small])
    wrapper.backward((small * torch.tensor([3.0, 0.0])).sum())  # norm 3 < 5: untouched
    wrapper.step()
    torch.testing.assert_close(small.grad, torch.tensor([3.0, 0.0]))
