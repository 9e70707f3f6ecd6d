"""``MEGVIIEMAHook``: the original's model EMA on top of mmengine's ``EMAHook`` (spec 7.1)."""
from __future__ import annotations

import logging
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import EMAHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import weights_to_cpu

from mmdet3d.registry import HOOKS, MODELS

from mmdet3d.utils.checkpoint_io import atomic_torch_save
from ..model_ema import MEGVIIExponentialMovingAverage

EMA_TYPE = MEGVIIExponentialMovingAverage.__name__


@HOOKS.register_module()
class MEGVIIEMAHook(EMAHook):
    """Keep a MEGVII-style EMA of the weights and write ``epoch_N_ema.pth`` every epoch.

    Behaviour (the original's unless a flag says otherwise):

    - The EMA is copied from the live model in ``before_train``, i.e. after ``load_from`` or a
      resume, with its counter at ``init_updates``; every train iteration then averages all
      floating state-dict entries (see :class:`MEGVIIExponentialMovingAverage`).
    - After every ``save_interval``-th epoch (and the last) rank 0 writes
      ``<work_dir>/epoch_N_ema.pth`` = ``{'state_dict', 'epoch', 'updates'}``; these files are
      what ``tools/test.py`` evaluates. The regular ``epoch_N.pth`` keep the live weights.
    - Validation during training uses the live weights (quirk 10.1.19) unless
      ``validate_with_ema``; ``tools/test.py`` evaluates exactly the checkpoint it is given.
    - A resume restarts the EMA from the resumed live weights (quirk 10.1.18) unless
      ``resume_ema``, which stores ``ema_state_dict`` in the regular checkpoints and restores
      the EMA (weights and counter) from it.

    Args:
        decay: asymptotic EMA decay. Defaults to 0.999.
        ramp: ramp time constant in updates. Defaults to 2000.
        init_updates: update counter at the start. Defaults to 10560 (the original's value).
        interval: update every ``interval`` iterations. Defaults to 1.
        save_interval: write the EMA file every this many epochs. Defaults to 1.
        validate_with_ema: swap the EMA weights in for validation during training.
            Defaults to False.
        resume_ema: keep the EMA across resumes (fix of quirk 10.1.18). Defaults to False.
        begin_iter: first iteration that updates the EMA (before it, the EMA tracks the live
            weights). Defaults to 0.
        begin_epoch: as ``begin_iter`` in epochs. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 decay: float = 0.999,
                 ramp: float = 2000.0,
                 init_updates: int = 10560,
                 interval: int = 1,
                 save_interval: int = 1,
                 validate_with_ema: bool = False,
                 resume_ema: bool = False,
                 begin_iter: int = 0,
                 begin_epoch: int = 0) -> None:
        super().__init__(ema_type=EMA_TYPE, strict_load=True, begin_iter=begin_iter,
                         begin_epoch=begin_epoch, decay=decay, ramp=ramp,
                         init_updates=init_updates, interval=interval)
        if save_interval < 1:
            raise ValueError(f'save_interval must be >= 1, got {save_interval}')
        self.save_interval = save_interval
        self.validate_with_ema = validate_with_ema
        self.resume_ema = resume_ema
        self.ema_model: MEGVIIExponentialMovingAverage | None = None
        self._resumed_state: dict | None = None

    def before_run(self, runner) -> None:
        """Nothing: the EMA is created in ``before_train`` (after loading/resuming)."""

    def before_train(self, runner) -> None:
        """Copy the (loaded or resumed) live model into the EMA."""
        super().before_train(runner)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.src_model = model
        self.ema_model = MODELS.build(self.ema_cfg, default_args=dict(model=model))
        if self._resumed_state is not None:
            self.ema_model.load_state_dict(self._resumed_state, strict=True)
            self._resumed_state = None
            print_log(f'EMA restored from the resumed checkpoint (updates '
                      f'{self.ema_model.updates})', logger='current')

    def after_train_epoch(self, runner) -> None:
        """Rank 0 writes ``epoch_N_ema.pth`` every ``save_interval`` epochs and at the end."""
        epoch = runner.epoch + 1
        if not (epoch % self.save_interval == 0 or epoch >= runner.max_epochs):
            return
        if not is_main_process():
            return
        path = osp.join(runner.work_dir, f'epoch_{epoch}_ema.pth')
        atomic_torch_save(
            dict(state_dict=weights_to_cpu(self.ema_model.module.state_dict()), epoch=epoch,
                 updates=self.ema_model.updates), path)
        print_log(f'Saved EMA weights (updates {self.ema_model.updates}) to {path}',
                  logger='current')

    def before_val_epoch(self, runner) -> None:
        if self.validate_with_ema and self.ema_model is not None:
            self._swap_ema_parameters()

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if self.validate_with_ema and self.ema_model is not None:
            self._swap_ema_parameters()

    def before_test_epoch(self, runner) -> None:
        """Nothing: a test evaluates the loaded checkpoint as it is."""

    def after_test_epoch(self, runner, metrics: dict | None = None) -> None:
        """Nothing (see ``before_test_epoch``)."""

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """With ``resume_ema``, add the EMA state as ``ema_state_dict``; weights stay live."""
        if self.resume_ema and self.ema_model is not None:
            checkpoint['ema_state_dict'] = weights_to_cpu(self.ema_model.state_dict())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On a resume with ``resume_ema``, keep the checkpoint's EMA state for ``before_train``."""
        if not (runner._resume and self.resume_ema):
            return
        if 'ema_state_dict' in checkpoint:
            self._resumed_state = checkpoint['ema_state_dict']
        else:
            print_log('resume_ema=True but the checkpoint has no ema_state_dict: the EMA '
                      'restarts from the resumed weights', logger='current',
                      level=logging.WARNING)
