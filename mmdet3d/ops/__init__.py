"""Custom operators (compiled kernels with pure-PyTorch references)."""
from __future__ import annotations

from .bev_pool_v2 import bev_pool_v2, bev_pool_v2_reference, ext_status, voxel_pooling_prepare_v2

__all__ = ['bev_pool_v2', 'bev_pool_v2_reference', 'ext_status', 'voxel_pooling_prepare_v2']
