"""Environment setup: make every registered module available under ``default_scope``."""
from __future__ import annotations


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import all registered components of the package and set the default scope.

    Args:
        init_default_scope: whether to make ``'mmdet3d'`` the current default scope of
            mmengine's registries. Defaults to True.
    """
    import mmdet3d.datasets  # noqa: F401
    import mmdet3d.engine  # noqa: F401
    import mmdet3d.evaluation  # noqa: F401
    import mmdet3d.models  # noqa: F401

    if init_default_scope:
        from mmengine.registry import DefaultScope

        if DefaultScope.get_current_instance() is None or \
                DefaultScope.get_current_instance().scope_name != 'mmdet3d':
            DefaultScope.get_instance(f'mmdet3d-{id(object())}', scope_name='mmdet3d')
