"""BEVPool v2 (lift-splat voxel pooling): compiled op, pure-PyTorch reference, rank preparation."""
from __future__ import annotations

from ._ext import ext_error, ext_status, load_ext
from .bev_pool import BEVPoolV2Function, bev_pool_v2
from .prepare import voxel_pooling_prepare_v2
from .reference import bev_pool_v2_reference

__all__ = [
    'BEVPoolV2Function', 'bev_pool_v2', 'bev_pool_v2_reference', 'voxel_pooling_prepare_v2',
    'ext_error', 'ext_status', 'load_ext'
]
