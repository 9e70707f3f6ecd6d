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


def _python_state_ok(state: Any) -> bool:
    """``random.getstate()``: (3, 624 words + position, cached gauss)."""
    if type(state) is not tuple or len(state) != 3 or state[0] != 3 \
            or type(state[1]) is not tuple or len(state[1]) != 625:
        return False
    *key, pos = state[1]
    return (all(type(w) is int and 0 <= w < 2**32 for w in key) and type(pos) is int
            and 0 <= pos <= 624 and (state[2] is None or type(state[2]) is float))


def _numpy_state_ok(state: Any) -> bool:
    """``np.random.get_state()``: ('MT19937', 624 uint32 words, position, has_gauss, gauss)."""
    if type(state) is not tuple or len(state) != 5 or state[0] != 'MT19937':
        return False
    key, pos, has_gauss, gauss = state[1:]
    return (isinstance(key, np.ndarray) and key.shape == (624, ) and key.dtype == np.uint32
            and isinstance(pos, (int, np.integer)) and 0 <= pos <= 624
            and has_gauss in (0, 1) and isinstance(gauss, (float, np.floating)))


def _torch_state_ok(state: Any, reference: torch.Tensor) -> bool:
    return (isinstance(state, torch.Tensor) and state.dtype == torch.uint8
            and state.shape == reference.shape)


def check_random_states(states: Any, source: str) -> None:
    """Validate saved random states (types, shapes, dtypes, ranges) before any is restored:
    numpy and torch read an out-of-range state as memory positions.

    Raises:
        ValueError: naming ``source`` (the checkpoint) and the first invalid state.
    """
    problem = None
    if not isinstance(states, dict) or not {'python', 'numpy', 'torch'} <= set(states):
        problem = 'expected a dict with python, numpy and torch states'
    elif not _python_state_ok(states['python']):
        problem = "'python' is not a random.getstate() of 624 32-bit words and a position <= 624"
    elif not _numpy_state_ok(states['numpy']):
        problem = ("'numpy' is not an MT19937 state of 624 uint32 words, a position <= 624 "
                   'and a cached Gaussian')
    elif not _torch_state_ok(states['torch'], torch.get_rng_state()):
        problem = "'torch' is not a uint8 tensor of the CPU generator's state size"
    elif 'cuda' in states and torch.cuda.is_available() and not (
            isinstance(states['cuda'], (list, tuple)) and all(
                _torch_state_ok(s, torch.cuda.get_rng_state()) for s in states['cuda'])):
        problem = "'cuda' is not a list of uint8 tensors of the CUDA generator's state size"
    if problem:
        raise ValueError(f'{source}: invalid random_states: {problem}')


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
            source = f'checkpoint {runner._load_from or "(latest in " + runner.work_dir + ")"}'
            check_random_states(checkpoint['random_states'], source)
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
