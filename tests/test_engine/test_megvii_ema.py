"""MEGVII EMA: the ramp formula, BN statistics, integer buffers, and the hook inside a Runner."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from torch import nn

from mmdet3d.engine.model_ema import MEGVIIExponentialMovingAverage
from mmdet3d.engine.runner_setup import build_runner

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures'


def _ramp(updates: int) -> float:
    return 0.999 * (1 - math.exp(-updates / 2000))


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_ramp_values():
    ema = MEGVIIExponentialMovingAverage(_net(), init_updates=10560)
    assert ema.decay_at(10561) == pytest.approx(0.99392, abs=1e-5)  # spec 7.1, first step
    assert ema.decay_at(10**7) == pytest.approx(0.999)
    assert MEGVIIExponentialMovingAverage(_net()).decay_at(1) == pytest.approx(
        0.999 * (1 - math.exp(-1 / 2000)))


def test_every_float_entry_is_averaged_integers_are_not():
    live = _net()
    ema = MEGVIIExponentialMovingAverage(live, init_updates=10560)
    snapshots = [{k: v.clone().double() for k, v in live.state_dict().items()}]
    for _ in range(2):
        live.train()
        live(torch.randn(4, 3))  # moves BN running stats and num_batches_tracked
        with torch.no_grad():
            for p in live.parameters():
                p.add_(torch.randn_like(p))
        snapshots.append({k: v.clone().double() for k, v in live.state_dict().items()})
        ema.update_parameters(live)
    assert ema.updates == 10562
    for key, value in ema.module.state_dict().items():
        if not value.dtype.is_floating_point:
            # num_batches_tracked keeps the copied value (0) while the live model counts 2
            assert value.item() == 0 and live.state_dict()[key].item() == 2
            continue
        expected = snapshots[0][key]
        for n, snap in enumerate(snapshots[1:], start=1):
            d = _ramp(10560 + n)
            expected = d * expected + (1 - d) * snap[key]
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7, msg=key)


class _Recorder(Hook):
    """Records the live state dict when training starts and after every iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.states = []

    def _record(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.states.append({k: v.detach().clone().double() for k, v in model.state_dict().items()})

    def before_train(self, runner):
        self._record(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._record(runner)


def _toy_cfg(work_dir: Path, **ema_kwargs) -> Config:
    cfg = Config.fromfile(FIXTURES / 'configs' / 'toy_occ_2e.py')
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'ema_{work_dir.name}'
    cfg.custom_hooks = [dict(type='MEGVIIEMAHook', init_updates=10560, **ema_kwargs)]
    cfg.train_dataloader.dataset.num_samples = 6  # 3 iterations per epoch
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.logger.interval = 100
    return cfg


def test_hook_writes_ema_file_matching_the_formula(tmp_path):
    recorder = _Recorder()
    runner = build_runner(_toy_cfg(tmp_path, save_interval=2))
    runner.register_hook(recorder)
    runner.train()
    assert not (tmp_path / 'epoch_1_ema.pth').exists()  # save_interval 2
    ckpt = torch.load(tmp_path / 'epoch_2_ema.pth', weights_only=True)
    assert set(ckpt) == {'state_dict', 'epoch', 'updates'}
    assert ckpt['epoch'] == 2 and ckpt['updates'] == 10560 + 6
    live_ckpt = torch.load(tmp_path / 'epoch_2.pth', weights_only=False)
    for key, value in ckpt['state_dict'].items():
        if not value.dtype.is_floating_point:
            continue
        expected = recorder.states[0][key]
        for n, snap in enumerate(recorder.states[1:], start=1):
            d = _ramp(10560 + n)
            expected = d * expected + (1 - d) * snap[key]
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7, msg=key)
        # the regular checkpoint keeps the live weights
        torch.testing.assert_close(live_ckpt['state_dict'][key].double(), recorder.states[-1][key])
    assert 'ema_state_dict' not in live_ckpt  # resume_ema off: EMA restarts on resume


def test_resume_ema_continues_the_average(tmp_path):
    full = build_runner(_toy_cfg(tmp_path / 'full', resume_ema=True))
    full.train()
    cfg = _toy_cfg(tmp_path / 'resumed', resume_ema=True)
    cfg.resume, cfg.load_from = True, str(tmp_path / 'full' / 'epoch_1.pth')
    build_runner(cfg).train()
    a = torch.load(tmp_path / 'full' / 'epoch_2_ema.pth', weights_only=True)
    b = torch.load(tmp_path / 'resumed' / 'epoch_2_ema.pth', weights_only=True)
    assert a['updates'] == b['updates'] == 10566
    for key in a['state_dict']:
        torch.testing.assert_close(a['state_dict'][key], b['state_dict'][key], msg=key)
