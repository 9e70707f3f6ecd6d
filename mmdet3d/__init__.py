"""OccFlowNet re-implementation: an mmdet3d-style research codebase on mmengine.

Importing the package is cheap: it only exposes the version. Modules are registered
lazily through the registries' ``locations`` (see :mod:`mmdet3d.registry`).
"""
from .version import __version__

__all__ = ['__version__']
