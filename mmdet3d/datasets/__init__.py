"""Registered datasets and transforms.

Every module that registers something is imported here, so building by name never depends on
import order. The data tools (``converters``: nuscenes-devkit) and the demo-world generator
(``synthetic``) register nothing and are imported only by the tools that use them.
"""
from mmdet3d.utils.import_utils import import_submodules

from . import nuscenes_occ_dataset  # noqa: F401

import_submodules(f'{__name__}.transforms')
