"""``MEGVIIExponentialMovingAverage``: the YOLOX/MEGVII model EMA with a warm-up ramp (spec 7.1)."""
from __future__ import annotations

import math

import torch
from mmengine.model import BaseAveragedModel
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class MEGVIIExponentialMovingAverage(BaseAveragedModel):
    """EMA of every floating-point state-dict entry with the decay ramp of MEGVII's ``ModelEMA``.

    At the n-th update (``updates = init_updates + n``, n starting at 1)
    ``d = decay * (1 - exp(-updates / ramp))`` and ``ema = d * ema + (1 - d) * live`` for all
    floating entries of ``state_dict()`` (parameters and BN running statistics). Integer buffers
    (``num_batches_tracked``) keep the value of the copy. Unlike mmengine's base class the first
    update already averages with the initial copy instead of overwriting it.

    Args:
        model: the model to average (deep-copied, frozen).
        decay: asymptotic decay. Defaults to 0.999.
        ramp: time constant of the ramp in updates. Defaults to 2000.
        init_updates: counter value before the first update (the original starts at 10560).
            Defaults to 0.
        interval: update every ``interval`` calls (mmengine). Defaults to 1.
        device: where the copy lives; None keeps the model's device. Defaults to None.
    """

    def __init__(self,
                 model: nn.Module,
                 decay: float = 0.999,
                 ramp: float = 2000.0,
                 init_updates: int = 0,
                 interval: int = 1,
                 device: torch.device | None = None) -> None:
        super().__init__(model, interval=interval, device=device, update_buffers=True)
        if not 0.0 < decay < 1.0:
            raise ValueError(f'decay must lie in (0, 1), got {decay}')
        if ramp <= 0:
            raise ValueError(f'ramp must be positive, got {ramp}')
        self.decay = decay
        self.ramp = ramp
        self.init_updates = init_updates

    @property
    def updates(self) -> int:
        """The MEGVII update counter: ``init_updates`` + updates done so far."""
        return self.init_updates + int(self.steps)

    def decay_at(self, updates: int) -> float:
        """Decay used at counter value ``updates``: ``decay * (1 - exp(-updates / ramp))``."""
        return self.decay * (1.0 - math.exp(-updates / self.ramp))

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        """In place ``averaged = d * averaged + (1 - d) * source`` with ``d`` of update steps+1."""
        d = self.decay_at(self.init_updates + int(steps) + 1)
        averaged_param.mul_(d).add_(source_param, alpha=1.0 - d)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """One EMA step towards ``model`` (called after every optimiser step)."""
        if int(self.steps) % self.interval == 0:
            source = model.state_dict()
            for key, avg in self.avg_parameters.items():
                if avg.dtype.is_floating_point:
                    self.avg_func(avg, source[key].detach().to(avg.device), int(self.steps))
        self.steps += 1

    def copy_from(self, model: nn.Module) -> None:
        """Restart the average from ``model``'s current state; the counter restarts too."""
        source = model.state_dict()
        with torch.no_grad():
            for key, avg in self.avg_parameters.items():
                avg.copy_(source[key].to(avg.device))
        self.steps.zero_()
