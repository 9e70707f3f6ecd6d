"""Scene geometries for the tests: the paper's, with any config key overridden."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmdet3d.structures.occ3d import GRID_SHAPE, POINT_CLOUD_RANGE
from mmdet3d.structures.occ_geometry import OccGeometry

#: The paper configs' geometry (configs/_base_/geometry/occ3d.py): the Occ3D grid, the
#: original's frames and conventions (its quirks).
OCC3D_GEOMETRY: dict[str, Any] = dict(
    label_grid=dict(lower=list(POINT_CLOUD_RANGE[:3]), upper=list(POINT_CLOUD_RANGE[3:]),
                    shape=list(GRID_SHAPE)),
    model_grid_shape=list(GRID_SHAPE), depth_bins=[1.0, 45.0, 0.5], adjacent_frames=[1, 2],
    render_frame_ids=[-3, -2, -1, 0, 1, 2, 3], lidar_key_ego=False, depth_along_ray=False,
    half_pixel_shift=True, align_corners=True, skip_copied_frames=False)


def occ3d_geometry(pc_range: Sequence[float] | None = None,
                   grid_shape: Sequence[int] | None = None, **overrides: Any) -> OccGeometry:
    """The paper's geometry with geometry config keys overridden (``OccGeometry.build``).

    Args:
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) of another label and model grid.
            Defaults to None (Occ3D's).
        grid_shape: (X, Y, Z) of both grids. Defaults to None (Occ3D's).
        overrides: geometry config keys, e.g. ``render_frame_ids=[0, 1]``,
            ``model_grid_shape=[100, 100, 16]``.
    """
    cfg = dict(OCC3D_GEOMETRY)
    grid = dict(cfg['label_grid'])
    if pc_range is not None:
        grid.update(lower=list(pc_range[:3]), upper=list(pc_range[3:]))
    if grid_shape is not None:
        grid['shape'] = cfg['model_grid_shape'] = list(grid_shape)
    cfg['label_grid'] = grid
    cfg.update(overrides)
    return OccGeometry.build(cfg)
