"""Config loading, option checks and CLI-to-config mapping of tools/train.py and test.py."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmdet3d.engine.runner_setup import (apply_test_args, apply_train_args, build_runner,
                                         load_config, run_test)
from mmdet3d.utils.checkpoint_io import atomic_torch_save, load_checkpoint_file

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / 'tests' / 'fixtures'
TOY_CFG = str(FIXTURES / 'configs' / 'toy_occ_2e.py')


def _train_args(**kw) -> argparse.Namespace:
    base = dict(config=TOY_CFG, work_dir=None, resume_from=None, resume=False, load_from=None,
                launcher='none', seed=None, deterministic=False, amp=False)
    return argparse.Namespace(**{**base, **kw})


def test_missing_config_file_is_named():
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        load_config('configs/no_such_config.py')


@pytest.mark.parametrize('key, message', [
    ('train_dataloader.batchsize', r"no key 'batchsize'.*did you mean 'batch_size'"),
    ('laod_from', r"the config has no key 'laod_from'.*'load_from'"),
    ('default_hooks.checkpont.interval', r"default_hooks has no key 'checkpont'"),
    ('param_scheduler.5.end', r"'5' is not an index"),
    # below a dict with a type: the constructor's signature (model, loop, optimizer, hook)
    ('train_cfg.max_epoch', r"'EpochBasedTrainLoop' at train_cfg takes no argument 'max_epoch'"
                            r"; did you mean 'max_epochs'"),
    ('model.channel', r"'ToyOccModel' at model takes no argument 'channel'.*'channels'"),
    ('optim_wrapper.optimizer.weight_decai', r"'AdamW' .* 'weight_decai'.*'weight_decay'"),
    ('custom_hooks.0.init_update', r"'MEGVIIEMAHook' .*'init_update'.*'init_updates'"),
])
def test_cfg_option_typos_are_named(key, message):
    with pytest.raises(KeyError, match=message):
        load_config(TOY_CFG, {key: 1})


def test_train_tool_rejects_a_constructor_typo_before_writing(tmp_path):
    """``tools/train.py`` with ``model.renderer.samples_per_rays``: refused, no work dir
    written."""
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/occflownet/occflownet_tiny_2d_flow_cpu.py',
         '--work-dir', str(work_dir), '--cfg-options', 'model.renderer.samples_per_rays=4'],
        cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "'VolumeRenderer' at model.renderer takes no argument 'samples_per_rays'; did you " \
           "mean 'samples_per_ray'" in result.stderr
    assert not work_dir.exists()


def test_valid_cfg_options_merge():
    cfg = load_config(TOY_CFG, {'train_cfg.max_epochs': 3, 'optim_wrapper.optimizer.betas':
                                (0.8, 0.9), 'model_wrapper_cfg': dict(type='X')})
    assert cfg.train_cfg.max_epochs == 3 and cfg.optim_wrapper.optimizer.betas == (0.8, 0.9)


def test_constructor_typo_inside_config_is_named(tmp_path):
    cfg = load_config(TOY_CFG)
    cfg.work_dir = str(tmp_path)
    cfg.model.num_clases = 3
    with pytest.raises(TypeError, match='num_clases'):
        build_runner(cfg)


def test_train_args_map_to_config(tmp_path):
    ckpt = tmp_path / 'c.pth'
    torch.save(dict(meta=dict(epoch=1, iter=4), state_dict={}, optimizer={}), ckpt)
    cfg = apply_train_args(load_config(TOY_CFG), _train_args(seed=7, deterministic=True))
    assert cfg.work_dir == 'work_dirs/toy_occ_2e'
    assert cfg.randomness == dict(seed=7, deterministic=True) and not cfg.resume
    cfg = apply_train_args(load_config(TOY_CFG), _train_args(resume_from=str(ckpt)))
    assert cfg.resume and cfg.load_from == str(ckpt)
    cfg = apply_train_args(load_config(TOY_CFG), _train_args(resume=True, work_dir='w'))
    assert cfg.resume and cfg.load_from is None and cfg.work_dir == 'w'
    cfg = apply_train_args(load_config(TOY_CFG), _train_args(load_from=str(ckpt), amp=True))
    assert not cfg.resume and cfg.load_from == str(ckpt)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'


@pytest.mark.parametrize('content, kind', [
    (dict(state_dict={}, epoch=2, updates=10564), 'the EMA weights written by MEGVIIEMAHook'),
    (dict(state_dict={}, meta=dict(epoch=12)), 'weights only'),
    ([1, 2], 'not a checkpoint dict'),
])
def test_resume_from_a_checkpoint_without_training_state_says_what_to_pass(
        tmp_path, content, kind):
    ckpt = tmp_path / 'epoch_2_ema.pth'
    torch.save(content, ckpt)
    with pytest.raises(ValueError, match=rf'--resume-from {ckpt} holds no training state') as e:
        apply_train_args(load_config(TOY_CFG), _train_args(resume_from=str(ckpt)))
    assert kind in str(e.value) and '--load-from' in str(e.value)


def test_load_from_and_resume_are_exclusive():
    with pytest.raises(ValueError, match='--load-from'):
        apply_train_args(load_config(TOY_CFG), _train_args(load_from='a.pth', resume=True))


@pytest.mark.parametrize('option', ['resume_from', 'load_from'])
def test_missing_checkpoint_is_named(option):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        apply_train_args(load_config(TOY_CFG), _train_args(**{option: 'nope.pth'}))


def test_test_args(tmp_path):
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    args = argparse.Namespace(config=TOY_CFG, checkpoint=str(ckpt), eval='mIoU', out='preds',
                              work_dir=None, launcher='none')
    cfg = apply_test_args(load_config(TOY_CFG), args)
    assert cfg.load_from == str(ckpt) and not cfg.resume
    assert cfg.test_evaluator == dict(type='OccMetric', save_dir='preds', format_only=False)
    args.eval = None
    assert apply_test_args(load_config(TOY_CFG), args).test_evaluator['format_only']
    args.out = None
    with pytest.raises(ValueError, match='--eval mIoU'):
        apply_test_args(load_config(TOY_CFG), args)
    args.checkpoint = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        apply_test_args(load_config(TOY_CFG), args)


def test_atomic_save_and_weights_only_load_of_mmengine_objects(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer

    buffer = HistoryBuffer()
    buffer.update(1.5)
    path = tmp_path / 'x.pth'
    atomic_torch_save(dict(buf=buffer, eta=np.float64(2.0), w=torch.ones(2)), str(path))
    assert [p.name for p in tmp_path.iterdir()] == ['x.pth']  # no temporary left behind
    loaded = load_checkpoint_file(str(path))
    assert loaded['buf'].current() == 1.5 and loaded['eta'] == 2.0


def test_test_refuses_a_checkpoint_that_does_not_fit_the_model(tmp_path):
    from mmdet3d.testing import toy_occ

    state = toy_occ.ToyOccModel().state_dict()
    del state['semantic.bias']
    ckpt = tmp_path / 'partial.pth'
    torch.save(dict(state_dict=state), ckpt)
    args = argparse.Namespace(config=TOY_CFG, checkpoint=str(ckpt), eval='mIoU', out=None,
                              work_dir=str(tmp_path / 'w'), launcher='none')
    cfg = apply_test_args(load_config(TOY_CFG), args)
    cfg.experiment_name = 'strict_test'
    with pytest.raises(RuntimeError, match='semantic.bias'):
        run_test(cfg)


TINY_CFG = 'configs/occflownet/occflownet_tiny_2d_flow_cpu.py'


@pytest.mark.parametrize('option, message', [
    # CheckpointHook takes **kwargs: they go to runner.save_checkpoint, which takes none more
    ('default_hooks.checkpoint.max_keep_ckpt=1',
     "'CheckpointHook' at default_hooks.checkpoint takes no argument 'max_keep_ckpt'; did you "
     "mean 'max_keep_ckpts'?"),
    # CosineAnnealingLR(optimizer, *args, **kwargs) -> CosineAnnealingParamScheduler.__init__
    ('param_scheduler.1.T_maxx=8',
     "'CosineAnnealingLR' at param_scheduler.1 takes no argument 'T_maxx'; did you mean "
     "'T_max'?"),
])
def test_train_tool_rejects_a_kwargs_typo_before_writing(tmp_path, option, message):
    """Typos under classes taking ``**kwargs`` are refused up front, not after an epoch."""
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', TINY_CFG, '--work-dir', str(work_dir),
         '--cfg-options', option], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr
    assert not work_dir.exists()


def test_valid_keywords_of_kwargs_classes_merge():
    cfg = load_config(TINY_CFG, {'default_hooks.checkpoint.max_keep_ckpts': 1,
                                 'param_scheduler.1.eta_min_ratio': 0.01,
                                 'param_scheduler.0.convert_to_iter_based': True,
                                 'default_hooks.logger.log_metric_by_epoch': False})
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 1
    assert cfg.param_scheduler[1].eta_min_ratio == 0.01
    assert cfg.param_scheduler[0].convert_to_iter_based


def test_kwargs_are_followed_through_the_bases():
    from mmengine.hooks import CheckpointHook, DistSamplerSeedHook, EMAHook
    from mmengine.optim import LinearLR

    from mmdet3d.engine.runner_setup import constructor_keywords

    checkpoint = constructor_keywords(CheckpointHook)
    assert 'max_keep_ckpts' in checkpoint and 'max_keep_ckpt' not in checkpoint
    linear = constructor_keywords('LinearLR')
    assert linear == constructor_keywords(LinearLR)
    # the named parameters of LinearParamScheduler and _ParamScheduler-level ones; param_name is
    # set by LRSchedulerMixin; convert_to_iter_based is taken by the scheduler build function
    assert {'start_factor', 'end_factor', 'begin', 'end', 'by_epoch', 'optimizer',
            'convert_to_iter_based'} <= set(linear)
    assert 'param_name' not in linear
    # object.__init__ takes no argument: only the keys that the registry's build takes out
    assert constructor_keywords(DistSamplerSeedHook) == ['_scope_', 'type']
    assert constructor_keywords(EMAHook) is None  # **kwargs build an open-ended EMA model


def test_dataloader_arguments_pass_and_typos_are_named():
    cfg = load_config(TINY_CFG, {'test_dataloader.pin_memory': True,
                                 'train_dataloader.num_batch_per_epoch': 2,
                                 'val_dataloader.prefetch_factor': 2})
    assert cfg.test_dataloader.pin_memory and cfg.train_dataloader.num_batch_per_epoch == 2
    with pytest.raises(KeyError, match=r"test_dataloader has no key 'pin_memori'.*DataLoader"
                                       r".*did you mean 'pin_memory'"):
        load_config(TINY_CFG, {'test_dataloader.pin_memori': True})


def test_option_on_a_copied_config_variable_names_the_copies():
    with pytest.raises(KeyError) as error:
        load_config(TINY_CFG, {'data_config.input_size': (256, 704)})
    message = str(error.value)
    assert 'data_config is a variable of the config file' in message
    for split in ('train', 'val', 'test'):
        assert f'{split}_dataloader.dataset.pipeline.0.data_config' in message
    assert 'model.img_view_transformer.input_size' in message
    assert '--cfg-options train_dataloader.dataset.pipeline.0.data_config.input_size=' in message
    with pytest.raises(KeyError, match=r'max_epochs into .*train_cfg\.max_epochs'):
        load_config(TINY_CFG, {'max_epochs': 3})
    # the places themselves take the override
    cfg = load_config(TINY_CFG, {'train_dataloader.dataset.pipeline.0.data_config.input_size':
                                 (256, 704)})
    assert cfg.train_dataloader.dataset.pipeline[0].data_config.input_size == (256, 704)
