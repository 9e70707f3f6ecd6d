"""Resume reproduces the uninterrupted run (RandomStateHook, added by ``tools/train.py``).

A toy run whose training draws from numpy's global generator (a random flip in the dataset)
and torch's (input noise in the model), with validation after every epoch: 3 epochs straight,
then a resume from epoch 1's checkpoint (what a kill anywhere in epoch 2 or 3 leads to). The
live weights and BN statistics of epoch 3, and the EMA with ``resume_ema``, must be identical
(max difference 0). The control without the hook shows the test can fail.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from mmdet3d.engine.runner_setup import apply_train_args, build_runner, load_config
from mmdet3d.utils.checkpoint_io import load_checkpoint_file

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures'
TOY_CFG = str(FIXTURES / 'configs' / 'toy_occ_2e.py')
OPTIONS = {
    'train_cfg.max_epochs': 3, 'train_cfg.val_interval': 1,
    'train_dataloader.dataset.random_flip': True, 'model.input_noise': 0.5,
    'custom_hooks.0.resume_ema': True,
}


def train(work_dir: Path, name: str, resume_from: Path | None = None,
          random_state_hook: bool = True) -> None:
    args = argparse.Namespace(config=TOY_CFG, work_dir=str(work_dir), load_from=None,
                              resume_from=None if resume_from is None else str(resume_from),
                              resume=False, launcher='none', seed=3, deterministic=False,
                              amp=False)
    cfg = apply_train_args(load_config(TOY_CFG, OPTIONS), args)
    if not random_state_hook:
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'RandomStateHook']
    cfg.experiment_name = name
    build_runner(cfg).train()


def max_difference(a: Path, b: Path) -> float:
    first, second = (load_checkpoint_file(str(p))['state_dict'] for p in (a, b))
    assert first.keys() == second.keys()
    return max(float((first[k].double() - second[k].double()).abs().max()) for k in first)


@pytest.fixture(scope='module')
def straight(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp('straight')
    train(work, 'rs_straight')
    return work


def test_resume_gives_the_uninterrupted_weights_exactly(straight, tmp_path):
    train(tmp_path, 'rs_resumed', resume_from=straight / 'epoch_1.pth')
    assert max_difference(straight / 'epoch_3.pth', tmp_path / 'epoch_3.pth') == 0.0
    assert max_difference(straight / 'epoch_3_ema.pth', tmp_path / 'epoch_3_ema.pth') == 0.0
    ema = [torch.load(p / 'epoch_3_ema.pth', weights_only=True)['updates']
           for p in (straight, tmp_path)]
    assert ema[0] == ema[1] == 10560 + 12


def test_without_the_hook_the_resumed_run_differs(straight, tmp_path):
    train(tmp_path, 'rs_control', resume_from=straight / 'epoch_1.pth', random_state_hook=False)
    assert max_difference(straight / 'epoch_3.pth', tmp_path / 'epoch_3.pth') > 1e-4


def _corrupt(states: dict, which: str) -> dict:
    states = dict(states)
    if which == 'numpy_position':  # numpy would read its key array at this position
        states['numpy'] = states['numpy'][:2] + (10**6, ) + states['numpy'][3:]
    elif which == 'numpy_key':
        states['numpy'] = (states['numpy'][0], states['numpy'][1][:100]) + states['numpy'][2:]
    elif which == 'python_position':
        states['python'] = (3, states['python'][1][:-1] + (700, ), None)
    elif which == 'torch_size':
        states['torch'] = states['torch'][:100]
    elif which == 'missing':
        del states['torch']
    return states


@pytest.mark.parametrize('which, expected', [
    ('numpy_position', "'numpy' is not an MT19937 state"), ('numpy_key', "'numpy'"),
    ('python_position', "'python'"), ('torch_size', "'torch' is not a uint8 tensor"),
    ('missing', 'expected a dict with python, numpy and torch')])
def test_invalid_random_states_are_named_before_any_is_restored(which, expected):
    from mmdet3d.engine.hooks.random_state_hook import (capture_random_states,
                                                        check_random_states)

    states = capture_random_states()
    check_random_states(states, 'x.pth')
    with pytest.raises(ValueError, match=f'x.pth: invalid random_states: {expected}'):
        check_random_states(_corrupt(states, which), 'x.pth')


def test_resume_from_a_checkpoint_with_an_out_of_range_state_names_it(tmp_path):
    from mmdet3d.utils.checkpoint_io import atomic_torch_save

    train(tmp_path / 'first', 'state_first')
    checkpoint = load_checkpoint_file(str(tmp_path / 'first' / 'epoch_1.pth'))
    checkpoint['random_states'] = _corrupt(checkpoint['random_states'], 'numpy_position')
    bad = tmp_path / 'bad.pth'
    atomic_torch_save(checkpoint, str(bad))
    with pytest.raises(ValueError, match=f'checkpoint {bad}: invalid random_states'):
        train(tmp_path / 'resumed', 'state_resumed', resume_from=bad)
