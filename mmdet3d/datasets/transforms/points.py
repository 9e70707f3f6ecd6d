"""``LoadPointsFromFile``: read the key-frame LiDAR sweep (spec 4.3.4)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmdet3d.registry import TRANSFORMS

from .base import BaseTransform
from .utils import check_file, require


def load_lidar_points(path: str, load_dim: int = 5) -> np.ndarray:
    """(P, load_dim) float32 points of a nuScenes ``.pcd.bin`` (x, y, z m; intensity; ring)."""
    raw = np.fromfile(check_file(path, 'LiDAR point file'), dtype=np.float32)
    if raw.size % load_dim:
        raise ValueError(f'{path}: {raw.size} floats are not a multiple of load_dim={load_dim}')
    return raw.reshape(-1, load_dim)


@TRANSFORMS.register_module()
class LoadPointsFromFile(BaseTransform):
    """Load the LiDAR points of ``pts_filename``; no filtering, LiDAR sensor frame.

    Required Keys:
        - pts_filename (str): ``.pcd.bin`` path.

    Added Keys:
        - points (np.ndarray): (P, len(use_dim)) float32.

    Args:
        coord_type: only ``'LIDAR'`` (points stay in the LiDAR sensor frame). Defaults to
            'LIDAR'.
        load_dim: floats per point in the file. Defaults to 5.
        use_dim: number of leading dims to keep, or the list of dims. Defaults to 5.
    """

    def __init__(self,
                 coord_type: str = 'LIDAR',
                 load_dim: int = 5,
                 use_dim: int | Sequence[int] = 5) -> None:
        if coord_type != 'LIDAR':
            raise ValueError(f"LoadPointsFromFile supports coord_type='LIDAR' only, "
                             f'got {coord_type!r}')
        self.load_dim = load_dim
        self.use_dim = list(range(use_dim)) if isinstance(use_dim, int) else list(use_dim)
        if max(self.use_dim) >= load_dim:
            raise ValueError(f'use_dim {self.use_dim} exceeds load_dim {load_dim}')

    def transform(self, results: dict) -> dict:
        path = require(results, 'pts_filename', 'LoadPointsFromFile')
        results['points'] = np.ascontiguousarray(load_lidar_points(path, self.load_dim)[
            :, self.use_dim])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(load_dim={self.load_dim}, use_dim={self.use_dim})'
