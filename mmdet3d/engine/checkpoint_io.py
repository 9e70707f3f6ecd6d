"""Checkpoint file helpers: atomic saving and weights-only loading of mmengine checkpoints."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write never leaves a truncated ``path`` behind.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


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
