"""``RandomStateHook``: a resumed run draws the same random numbers as the uninterrupted one."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS


def capture_random_states() -> dict[str, Any]:
    """The generators training draws from in the main process: Python's ``random``, numpy's
    global generator (the augmentation with ``num_workers=0``), torch's CPU generator (ray
    sampling, sampling jitter, the data loader's base seed) and the CUDA generators."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_random_states` (CUDA only where saved and present)."""
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states with every checkpoint and restore them on resume; keep
    validation from consuming them.

    mmengine's resume restores weights, optimizer, schedule and counters, and the sampler is
    seeded by seed and epoch, but the generators that augmentation and ray sampling draw from
    restart from the seed, so a resumed run diverges from the uninterrupted one. With this hook
    (added by ``tools/train.py``) the checkpoint written after epoch k holds the states at that
    point (``random_states``), a resume restores them in ``before_train`` (after mmengine's own
    re-seeding), and validation runs between a capture and a restore, so epoch k+1 draws the
    same numbers either way. Data-loader workers are re-seeded by mmengine at every epoch from
    the seed, so they need nothing (persistent workers are the exception: their generators
    carry across epochs and restart on resume).
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._resumed: dict[str, Any] | None = None
        self._before_val: dict[str, Any] | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_states'] = capture_random_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume and 'random_states' in checkpoint:
            self._resumed = checkpoint['random_states']

    def before_train(self, runner) -> None:
        if self._resumed is not None:
            restore_random_states(self._resumed)
            self._resumed = None

    def before_val(self, runner) -> None:
        self._before_val = capture_random_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_random_states(self._before_val)
            self._before_val = None
