"""``BaseTransform``: the minimal transform interface used by the data pipelines (mmcv-free)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod


class BaseTransform(metaclass=ABCMeta):
    """A pipeline step that maps a results dict to a results dict.

    Compatible with mmengine's ``Compose``: instances are callables taking and returning the
    results dict. Subclasses implement :meth:`transform` and may modify ``results`` in place.
    """

    def __call__(self, results: dict) -> dict:
        return self.transform(results)

    @abstractmethod
    def transform(self, results: dict) -> dict:
        """Apply the transform to ``results`` and return it."""

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
