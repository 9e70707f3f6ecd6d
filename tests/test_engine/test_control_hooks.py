"""SyncbnControlHook and SequentialControlHook on stand-in runners."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn

from mmdet3d.engine.hooks.sequential_control_hook import SequentialControlHook
from mmdet3d.engine.hooks.syncbn_control_hook import SyncbnControlHook, convert_to_syncbn
from mmdet3d.registry import HOOKS


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4),
                         nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4)), nn.LayerNorm(4))


def test_convert_to_syncbn_shares_parameters_and_statistics():
    net = _net()
    weight, mean = net[1].weight, net[2][1].running_mean
    assert convert_to_syncbn(net) == 2
    assert isinstance(net[1], nn.SyncBatchNorm) and isinstance(net[2][1], nn.SyncBatchNorm)
    assert isinstance(net[3], nn.LayerNorm)
    assert net[1].weight is weight and net[2][1].running_mean is mean
    assert convert_to_syncbn(net) == 0  # already converted


@pytest.mark.parametrize('distributed', [False, True])
def test_syncbn_hook_leaves_bn_alone_when_not_distributed_or_on_cpu(distributed):
    net = _net()
    hook = HOOKS.build(dict(type='SyncbnControlHook', syncbn_start_epoch=1))
    runner = SimpleNamespace(epoch=0, distributed=distributed, model=net)
    hook.before_train_epoch(runner)
    assert not hook.done  # before the start epoch
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert hook.done and isinstance(net[1], nn.BatchNorm2d)  # CPU: PyTorch SyncBN unusable


def test_syncbn_hook_rejects_negative_epoch():
    with pytest.raises(ValueError, match='syncbn_start_epoch'):
        SyncbnControlHook(syncbn_start_epoch=-1)


def test_sequential_control_hook_switches_the_flag_at_the_epoch():
    model = nn.Linear(1, 1)
    model.with_prev = True
    hook = SequentialControlHook(start_epoch=2)
    seen = []
    for epoch in range(4):
        hook.before_train_epoch(SimpleNamespace(epoch=epoch, model=model))
        seen.append(model.with_prev)
    assert seen == [False, False, True, True]


def test_sequential_control_hook_names_a_missing_attribute():
    hook = SequentialControlHook(start_epoch=1, attr='use_temporal')
    with pytest.raises(AttributeError, match='use_temporal'):
        hook.before_train_epoch(SimpleNamespace(epoch=0, model=nn.Linear(1, 1)))
