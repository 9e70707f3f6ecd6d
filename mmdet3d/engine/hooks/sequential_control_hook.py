"""``SequentialControlHook``: set a boolean model flag from a given epoch on (spec 7.3)."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


@HOOKS.register_module()
class SequentialControlHook(Hook):
    """Before every train epoch set ``model.<attr> = runner.epoch >= start_epoch``.

    The original (unused by the shipped configs) turned ``with_prev`` (temporal fusion) off
    until ``temporal_start_epoch``.

    Args:
        start_epoch: 0-based epoch from which the flag is True. Defaults to 1.
        attr: name of the boolean attribute on the (unwrapped) model. Defaults to 'with_prev'.
    """

    priority = 'NORMAL'

    def __init__(self, start_epoch: int = 1, attr: str = 'with_prev') -> None:
        self.start_epoch = start_epoch
        self.attr = attr

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, self.attr):
            raise AttributeError(f'SequentialControlHook: {type(model).__name__} has no '
                                 f'attribute {self.attr!r} to switch')
        value = runner.epoch >= self.start_epoch
        if getattr(model, self.attr) != value:
            print_log(f'SequentialControlHook: {self.attr} = {value} from epoch {runner.epoch}',
                      logger='current')
        setattr(model, self.attr, value)
