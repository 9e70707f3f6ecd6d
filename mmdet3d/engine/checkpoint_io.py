"""Checkpoint file helpers: atomic saving and weights-only loading of mmengine checkpoints."""
from __future__ import annotations

from typing import Any

import torch

from mmdet3d.utils.file_io import atomic_open


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write never leaves a truncated ``path`` behind.
    """
    with atomic_open(path) as f:
        torch.save(obj, f)


def register_checkpoint_safe_globals() -> None:
    """Allow mmengine's own checkpoint contents under ``torch.load(weights_only=True)``.

    Since torch 2.6 ``torch.load`` unpickles only allow-listed globals by default. mmengine's
    checkpoints carry a ``message_hub`` with ``HistoryBuffer`` objects (whose pickled state
    refers to its statistics methods through ``getattr``) and numpy scalars/arrays, so a resume
    fails with an ``UnpicklingError`` unless these are allow-listed. Loading stays weights-only
    for everything else; the weights-only unpickler still refuses to *call* anything that is
    not allow-listed, so ``getattr`` can only fetch attributes. Idempotent.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    dtype_classes = {type(np.dtype(t)) for t in np.sctypeDict.values()}
    torch.serialization.add_safe_globals([
        HistoryBuffer, getattr, np.core.multiarray._reconstruct, np.core.multiarray.scalar,
        np.ndarray, np.dtype, *sorted(dtype_classes, key=lambda c: c.__name__)
    ])
