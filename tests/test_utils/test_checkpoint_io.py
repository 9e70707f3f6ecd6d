"""A checkpoint cannot run code (issue: checkpoint security).

Crafted payloads, saved with ``torch.save`` like any checkpoint: a plain ``os.system`` reduce,
and a chain that reaches ``os.system`` through ``builtins.getattr`` and torch's default-allowed
``torch._tensor._rebuild_from_type_v2`` (which calls whatever it is handed). The chain is shown to
be a real exploit where the builtin ``getattr`` is allow-listed (the old behaviour), then refused
by every loading path of the project: the file loader, mmengine's ``load_checkpoint`` (the tools),
``tools/test.py``'s ``run_test``, a ``--resume-from`` run and the non-strict pretrained loader.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._tensor
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import load_checkpoint

from mmdet3d.engine.runner_setup import (apply_test_args, apply_train_args, build_runner,
                                         load_config, run_test)
from mmdet3d.models.utils.checkpoint import load_checkpoint_non_strict
from mmdet3d.utils.checkpoint_io import (CheckpointRefusedError, HistoryBufferState,
                                         atomic_torch_save, history_buffer_statistic,
                                         load_checkpoint_file,
                                         route_mmengine_checkpoint_loading)
from mmdet3d.utils.safe_pickle import UnsafePickleError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / 'tests' / 'fixtures'
TOY_CFG = str(FIXTURES / 'configs' / 'toy_occ_2e.py')


class Call:
    """Pickles as ``fn(*args)`` (a REDUCE of the global ``fn``)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def getattr_chain(marker: Path) -> Call:
    """``os.system('touch marker')`` from ``getattr`` and ``_rebuild_from_type_v2`` only."""
    rebuild = torch._tensor._rebuild_from_type_v2
    builtins_module = Call(getattr, getattr, '__self__')
    module_type = Call(getattr, builtins_module, '__class__')
    importer = Call(getattr, builtins_module, '__import__')
    os_module = Call(rebuild, importer, module_type, ('os', ), {})
    return Call(rebuild, Call(getattr, os_module, 'system'), Call(getattr, 0, '__class__'),
                (f'touch {marker}', ), {})


def plain_reduce(marker: Path) -> Call:
    return Call(os.system, f'touch {marker}')


def save_payload(tmp_path: Path, payload, name: str) -> tuple[Path, Path]:
    """A checkpoint-shaped file whose ``meta`` is the payload; returns (file, marker)."""
    marker = tmp_path / f'{name}.ran'
    path = tmp_path / f'{name}.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=payload(marker)), path)
    return path, marker


PAYLOADS = [('chain', getattr_chain), ('plain', plain_reduce)]


def test_the_chain_runs_code_where_builtin_getattr_is_allowed(tmp_path):
    """The control: with ``builtins.getattr`` allow-listed (the old loader) the chain executes."""
    path, marker = save_payload(tmp_path, getattr_chain, 'chain')
    code = ('import sys, torch; torch.serialization.add_safe_globals([getattr]); '
            'torch.load(sys.argv[1], weights_only=True)')
    subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize('name, payload', PAYLOADS)
def test_file_loader_refuses_payloads_naming_the_file(tmp_path, name, payload):
    path, marker = save_payload(tmp_path, payload, name)
    with pytest.raises(CheckpointRefusedError, match=f'refused to load checkpoint {path}'):
        load_checkpoint_file(str(path))
    assert not marker.exists()


@pytest.mark.parametrize('name, payload', PAYLOADS)
def test_mmengine_and_pretrained_loaders_refuse_payloads(tmp_path, name, payload):
    from mmdet3d.testing import toy_occ

    path, marker = save_payload(tmp_path, payload, name)
    # what the tools do before any loading (build_runner); without it mmengine's own loader
    # depends on which earlier test of the same worker process happened to call it
    route_mmengine_checkpoint_loading()
    with pytest.raises(CheckpointRefusedError, match=str(path)):
        load_checkpoint(toy_occ.ToyOccModel(), str(path), map_location='cpu')
    with pytest.raises(CheckpointRefusedError, match=str(path)):
        load_checkpoint_non_strict(toy_occ.ToyOccModel(), str(path), logger=None)
    assert not marker.exists()


def test_test_tool_refuses_the_chain(tmp_path):
    path, marker = save_payload(tmp_path, getattr_chain, 'chain')
    args = argparse.Namespace(config=TOY_CFG, checkpoint=str(path), eval='mIoU', out=None,
                              work_dir=str(tmp_path / 'w'), launcher='none')
    cfg = apply_test_args(load_config(TOY_CFG), args)
    cfg.experiment_name = 'refuse_test'
    with pytest.raises(CheckpointRefusedError, match=str(path)):
        run_test(cfg)
    assert not marker.exists()


def test_resume_refuses_the_chain(tmp_path):
    """Refused by ``tools/train.py --resume-from``'s check, before any folder is written."""
    path, marker = save_payload(tmp_path, getattr_chain, 'chain')
    args = argparse.Namespace(config=TOY_CFG, work_dir=str(tmp_path / 'w'), resume_from=str(path),
                              resume=False, load_from=None, launcher='none', seed=0,
                              deterministic=False, amp=False)
    with pytest.raises(CheckpointRefusedError, match=str(path)):
        apply_train_args(load_config(TOY_CFG), args)
    assert not marker.exists() and not (tmp_path / 'w').exists()


def test_runner_resume_refuses_the_chain(tmp_path):
    """And by mmengine's resume itself (``--resume`` picks the work dir's last checkpoint)."""
    path, marker = save_payload(tmp_path, getattr_chain, 'chain')
    cfg = load_config(TOY_CFG)
    cfg.work_dir, cfg.resume, cfg.load_from = str(tmp_path / 'w'), True, str(path)
    cfg.experiment_name = 'refuse_resume'
    runner = build_runner(cfg)
    with pytest.raises(CheckpointRefusedError, match=str(path)):
        runner.train()
    assert not marker.exists()


def test_mmengine_training_state_still_loads(tmp_path):
    """HistoryBuffer (with its statistics methods), numpy scalars/arrays and tensors."""
    buffer = HistoryBuffer()
    buffer.update(1.5)
    buffer.update(2.5)
    path = tmp_path / 'state.pth'
    atomic_torch_save(dict(buf=buffer, eta=np.float64(2.0), arr=np.arange(3), w=torch.ones(2)),
                      str(path))
    loaded = load_checkpoint_file(str(path))
    assert loaded['buf'].mean() == 2.0 and loaded['buf'].statistics('max') == 2.5
    assert loaded['eta'] == 2.0 and loaded['arr'].tolist() == [0, 1, 2]


def test_getattr_stand_in_accepts_only_history_buffer_statistics():
    for name in ('min', 'max', 'current', 'mean'):
        assert history_buffer_statistic(HistoryBufferState, name) == f'HistoryBuffer.{name}'
    for owner, name in [(HistoryBufferState, '__init__'), (HistoryBufferState, '__class__'),
                        (HistoryBuffer, 'mean'), (os, 'system'), (getattr, '__self__')]:
        with pytest.raises(UnsafePickleError, match=repr(name)):
            history_buffer_statistic(owner, name)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
