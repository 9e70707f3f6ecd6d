"""Registered evaluation components; every submodule is imported so that registration is complete."""
from mmdet3d.utils.import_utils import import_submodules

import_submodules(__name__)
