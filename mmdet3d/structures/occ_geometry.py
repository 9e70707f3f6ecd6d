"""The scene geometry of a config, declared once and handed to the dataset, transforms and model.

:class:`VoxelGrid` is a metric voxel grid; :class:`OccGeometry` holds the label and model grids,
the LSS depth bins, the frame sets and the geometric conventions (each the original's quirk or
its fix). A config declares ``geometry = dict(...)`` (the keys of :meth:`OccGeometry.build`);
``mmdet3d.engine.runner_setup.load_config`` hands it to the model and the datasets, the dataset
to its pipeline steps and the model to its view transformer and renderer (docs/architecture.md,
"The scene geometry").

Axis order: grid indices and :attr:`VoxelGrid.shape` are (X, Y, Z), as the Occ3D labels; the
model's volumes are (B, Z, Y, X, C) (:attr:`VoxelGrid.model_layout_shape`,
``mmdet3d.structures.voxel_grids``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from .voxel_grids import grid_factors

Points = TypeVar('Points', np.ndarray, torch.Tensor)


def _triple(value: Any, field: str, kind: type, names: str = '(x, y, z)') -> tuple:
    """``value`` as a 3-tuple of ``kind`` (int: integral values only), else ValueError."""
    if (isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence)
            or len(value) != 3 or any(isinstance(v, bool) or not isinstance(
                v, (int, float, np.number)) for v in value)):
        raise ValueError(f'{field} must be 3 numbers {names}, got {value!r}')
    if kind is int:
        if any(float(v) != int(v) for v in value):
            raise ValueError(f'{field} must be 3 integers {names}, got {value!r}')
        return tuple(int(v) for v in value)
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class VoxelGrid:
    """An axis-aligned grid of ``shape`` cells over [lower, upper) in metres.

    Cell (i, j, k) (indices in (X, Y, Z) order) spans ``lower + (i, j, k) * voxel_size`` to one
    ``voxel_size`` further.

    Attributes:
        lower: (x, y, z) lower corner, metres.
        upper: (x, y, z) upper corner, metres; each above ``lower``.
        shape: (X, Y, Z) cells, positive.
    """
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        lower = _triple(self.lower, 'lower', float)
        upper = _triple(self.upper, 'upper', float)
        shape = _triple(self.shape, 'shape', int, '(X, Y, Z)')
        if any(s <= 0 for s in shape):
            raise ValueError(f'shape must be positive, got {list(shape)}')
        if any(u <= lo for lo, u in zip(lower, upper)):
            raise ValueError(f'upper {list(upper)} must exceed lower {list(lower)} on each axis')
        object.__setattr__(self, 'lower', lower)
        object.__setattr__(self, 'upper', upper)
        object.__setattr__(self, 'shape', shape)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """(x, y, z) cell edge, metres: (upper - lower) / shape."""
        return tuple((u - lo) / s for lo, u, s in zip(self.lower, self.upper, self.shape))

    @property
    def pc_range(self) -> tuple[float, ...]:
        """(x_min, y_min, z_min, x_max, y_max, z_max), metres."""
        return self.lower + self.upper

    @property
    def model_layout_shape(self) -> tuple[int, int, int]:
        """(Z, Y, X): the voxel axes of the model's (B, Z, Y, X, C) volumes."""
        return self.shape[::-1]

    def world_to_index(self, points: Points) -> Points:
        """Index of the cell holding each point: ``floor((p - lower) / voxel_size)``.

        Args:
            points: (..., 3) metric (x, y, z), an array or a tensor.

        Returns:
            (..., 3) int64 (i, j, k) of the same kind; outside the grid below 0 or >= shape.
        """
        if isinstance(points, torch.Tensor):
            lower, size = (torch.tensor(v, dtype=torch.float64, device=points.device)
                           for v in (self.lower, self.voxel_size))
            return torch.floor((points.double() - lower) / size).long()
        points = np.asarray(points, dtype=np.float64)
        return np.floor((points - np.asarray(self.lower)) / np.asarray(self.voxel_size)).astype(
            np.int64)

    def index_to_world(self, indices: Points) -> Points:
        """Centre of each cell: ``lower + (index + 0.5) * voxel_size``.

        Args:
            indices: (..., 3) (i, j, k), an array or a tensor.

        Returns:
            (..., 3) float64 metric (x, y, z) of the same kind.
        """
        if isinstance(indices, torch.Tensor):
            lower, size = (torch.tensor(v, dtype=torch.float64, device=indices.device)
                           for v in (self.lower, self.voxel_size))
            return lower + (indices.double() + 0.5) * size
        indices = np.asarray(indices, dtype=np.float64)
        return np.asarray(self.lower) + (indices + 0.5) * np.asarray(self.voxel_size)

    def contains(self, points: Points) -> Points:
        """Whether each point lies in a cell (lower <= p < upper, as :meth:`world_to_index`).

        Args:
            points: (..., 3) metric (x, y, z), an array or a tensor.

        Returns:
            (...,) bool of the same kind.
        """
        index = self.world_to_index(points)
        if isinstance(index, torch.Tensor):
            shape = torch.tensor(self.shape, device=index.device)
        else:
            shape = np.asarray(self.shape)
        return ((index >= 0) & (index < shape)).all(-1)


#: The keys of a geometry config (:meth:`OccGeometry.build`), all required.
GEOMETRY_KEYS = ('label_grid', 'model_grid_shape', 'depth_bins', 'adjacent_frames',
                 'render_frame_ids', 'lidar_key_ego', 'depth_along_ray', 'half_pixel_shift',
                 'align_corners', 'skip_copied_frames')
_GRID_KEYS = ('lower', 'upper', 'shape')
_FLAGS = GEOMETRY_KEYS[5:]


def _checked_keys(cfg: Mapping, accepted: Sequence[str], what: str) -> None:
    unknown = [k for k in cfg if k not in accepted]
    if unknown:
        raise KeyError(f'{what}: unknown key(s) {unknown}; accepted: {list(accepted)}')
    missing = [k for k in accepted if k not in cfg]
    if missing:
        raise KeyError(f'{what} lacks {missing} (no defaults; accepted: {list(accepted)})')


def _int_tuple(value: Any, field: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
        raise ValueError(f'{field} must be a sequence of integers, got {value!r}')
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class OccGeometry:
    """The geometry shared by the dataset, the transforms and the model.

    Attributes:
        label_grid: the grid of the Occ3D labels: evaluation, the 3-D losses' targets and the
            voxel indices of the flow rows; its range bounds the rays (``GenerateRays``).
        model_grid: the grid of the model's volumes (view transformer, decoders, renderer):
            the label grid's range, each label-grid size a multiple of its own (a coarser model
            grid's predictions are nearest-upsampled to the label grid, the flow indices
            divided down, the 3-D targets majority-pooled).
        depth_bins: (start, stop, step) metres of the LSS view transformer's depth bins
            (``arange``); the depth GT keeps points with z in [start, stop).
        adjacent_frames: past key-frame offsets loaded with the key frame for temporal fusion,
            e.g. (1, 2): all but the last are fused, the last is the stereo reference frame;
            positive, increasing.
        render_frame_ids: key-frame offsets whose LiDAR rays supervise, e.g. (-3, ..., 3);
            distinct, with 0.
        lidar_key_ego: True: the model's key ego frame is the key frame's LiDAR-timestamp ego
            pose, that of the rays and the labels (``PrepareImageInputs``); False: the
            original's CAM_FRONT_LEFT ego pose (quirk 5).
        depth_along_ray: True: a ray's depth is the distance along it, what the renderer
            renders; False: the original's camera z-depth (quirk 1) (``GenerateRays``).
        half_pixel_shift: True: the original's rays through (u + 0.5, v + 0.5), beside the
            LiDAR point (quirk 2); False: through the projected point (``GenerateRays``).
        align_corners: True: the original's renderer lookup, which puts the range borders on
            the first and last voxel centres, half a voxel off at the borders (quirk 3); False:
            cell-aligned, as the view transformer, labels and flow (``VolumeRenderer``).
        skip_copied_frames: True: render frames that the dataset filled with the key frame at
            a scene boundary give no rays; False: the original duplicates their rays
            (quirk 8) (``GenerateRays``).
    """
    label_grid: VoxelGrid
    model_grid: VoxelGrid
    depth_bins: tuple[float, float, float]
    adjacent_frames: tuple[int, ...]
    render_frame_ids: tuple[int, ...]
    lidar_key_ego: bool
    depth_along_ray: bool
    half_pixel_shift: bool
    align_corners: bool
    skip_copied_frames: bool

    def __post_init__(self) -> None:
        for name in ('label_grid', 'model_grid'):
            if not isinstance(getattr(self, name), VoxelGrid):
                raise TypeError(f'{name} must be a VoxelGrid, got {getattr(self, name)!r}')
        label, model = self.label_grid, self.model_grid
        if (label.lower, label.upper) != (model.lower, model.upper):
            raise ValueError(f'model_grid range {list(model.pc_range)} differs from label_grid '
                             f'range {list(label.pc_range)}')
        try:
            grid_factors(label.shape, model.shape)
        except ValueError:
            raise ValueError(f'label_grid shape {list(label.shape)} is not a multiple of '
                             f'model_grid shape {list(model.shape)} on every axis') from None
        start, stop, step = _triple(self.depth_bins, 'depth_bins', float, '(start, stop, step)')
        if step <= 0 or stop <= start:
            raise ValueError(f'depth_bins (start, stop, step) must have stop > start and '
                             f'step > 0, got {list(self.depth_bins)}')
        adjacent = _int_tuple(self.adjacent_frames, 'adjacent_frames')
        if not adjacent or adjacent[0] <= 0 or any(b <= a for a, b in zip(adjacent,
                                                                          adjacent[1:])):
            raise ValueError(f'adjacent_frames must be positive and increasing, got '
                             f'{list(adjacent)}')
        render = _int_tuple(self.render_frame_ids, 'render_frame_ids')
        if 0 not in render or len(set(render)) != len(render):
            raise ValueError(f'render_frame_ids must be distinct and contain 0, got '
                             f'{list(render)}')
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'{name} must be True or False, got {getattr(self, name)!r}')
        object.__setattr__(self, 'depth_bins', (start, stop, step))
        object.__setattr__(self, 'adjacent_frames', adjacent)
        object.__setattr__(self, 'render_frame_ids', render)

    @classmethod
    def build(cls, cfg: OccGeometry | Mapping[str, Any]) -> OccGeometry:
        """An OccGeometry from its config dict (or itself).

        The config holds exactly :data:`GEOMETRY_KEYS`: ``label_grid`` = dict(lower, upper,
        shape), ``model_grid_shape`` (X, Y, Z) over the label grid's range, ``depth_bins``,
        ``adjacent_frames``, ``render_frame_ids`` and the five flags, e.g. the paper's::

            dict(label_grid=dict(lower=[-40, -40, -1], upper=[40, 40, 5.4],
                                 shape=[200, 200, 16]),
                 model_grid_shape=[200, 200, 16], depth_bins=[1.0, 45.0, 0.5],
                 adjacent_frames=[1, 2], render_frame_ids=[-3, -2, -1, 0, 1, 2, 3],
                 lidar_key_ego=False, depth_along_ray=False, half_pixel_shift=True,
                 align_corners=True, skip_copied_frames=False)

        Raises:
            TypeError: ``cfg`` is neither an OccGeometry nor a dict.
            KeyError: naming unknown or missing keys (nothing is filled in).
            ValueError: naming the invalid field.
        """
        if isinstance(cfg, OccGeometry):
            return cfg
        if not isinstance(cfg, Mapping):
            raise TypeError(f'geometry must be an OccGeometry or its config dict, got '
                            f'{type(cfg).__name__}')
        _checked_keys(cfg, GEOMETRY_KEYS, 'geometry')
        grid = cfg['label_grid']
        if not isinstance(grid, Mapping):
            raise TypeError(f'geometry.label_grid must be a dict{_GRID_KEYS}, got {grid!r}')
        _checked_keys(grid, _GRID_KEYS, 'geometry.label_grid')
        label = VoxelGrid(grid['lower'], grid['upper'], grid['shape'])
        model = VoxelGrid(label.lower, label.upper, cfg['model_grid_shape'])
        return cls(label, model, *(cfg[key] for key in GEOMETRY_KEYS[2:]))

    @property
    def num_adj(self) -> int:
        """Adjacent frames fused with the key frame: ``len(adjacent_frames) - 1``."""
        return len(self.adjacent_frames) - 1

    @property
    def grid_factors(self) -> tuple[int, int, int]:
        """(X, Y, Z) factors from the model grid to the label grid (1s when they are one)."""
        return grid_factors(self.label_grid.shape, self.model_grid.shape)

    @property
    def grid_config(self) -> dict[str, list[float]]:
        """The view transformer's ``dict(x=[lo, hi, step], y=..., z=..., depth=[...])`` of the
        model grid and the depth bins."""
        grid = self.model_grid
        axes = {axis: [lo, hi, step] for axis, lo, hi, step in zip(
            'xyz', grid.lower, grid.upper, grid.voxel_size)}
        return dict(axes, depth=list(self.depth_bins))


def with_geometry(cfg: Mapping[str, Any], geometry: OccGeometry | Mapping[str, Any],
                  name: str) -> dict[str, Any]:
    """A copy of the component config ``cfg`` with ``geometry`` (an OccGeometry or its config
    dict, kept as given).

    Raises:
        ValueError: naming ``name``, when ``cfg`` sets a geometry of its own that differs.
    """
    cfg = dict(cfg)
    if 'geometry' in cfg and OccGeometry.build(cfg['geometry']) != OccGeometry.build(geometry):
        raise ValueError(f'{name} sets a geometry of its own that differs from the one handed '
                         f'to it: declare the geometry once (the config\'s top-level '
                         f'`geometry`)')
    cfg['geometry'] = geometry
    return cfg
