"""Lazy loader of the compiled ``bev_pool_v2_ext`` extension.

Importing this module never fails: the first call of :func:`load_ext` tries the import once and
keeps either the module or the ``ImportError`` (for diagnostics, e.g. ``collect_env``).
"""
from __future__ import annotations

import importlib
from types import ModuleType

EXT_NAME = 'mmdet3d.ops.bev_pool_v2.bev_pool_v2_ext'

_state: dict = {}


def load_ext() -> ModuleType | None:
    """The compiled extension, or None when it is not built (the error is kept)."""
    if 'module' not in _state:
        try:
            _state['module'] = importlib.import_module(EXT_NAME)
            _state['error'] = None
        except ImportError as err:
            _state['module'] = None
            _state['error'] = err
    return _state['module']


def ext_error() -> ImportError | None:
    """The ImportError raised while loading the extension, or None if it loaded."""
    load_ext()
    return _state['error']


def ext_has_cuda() -> bool:
    """True when the extension is loaded and was compiled with its CUDA kernels."""
    module = load_ext()
    return module is not None and bool(module.with_cuda())


def ext_status() -> str:
    """One line describing the extension: loaded (with or without CUDA) or the import error."""
    module = load_ext()
    if module is None:
        return f'bev_pool_v2_ext: not available ({ext_error()!r})'
    kernels = 'CPU + CUDA' if module.with_cuda() else 'CPU only'
    return f'bev_pool_v2_ext: loaded from {module.__file__} ({kernels} kernels)'
