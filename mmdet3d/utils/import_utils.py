"""Import every submodule of a package so that its registered classes exist."""
from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str) -> None:
    """Recursively import all modules below ``package_name``.

    Registry ``locations`` point at packages whose ``__init__`` calls this, so building
    any registered class by name never depends on which modules were imported before.

    Args:
        package_name: dotted name of an importable package, e.g. ``'mmdet3d.models'``.
    """
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, prefix=package_name + '.'):
        importlib.import_module(info.name)
