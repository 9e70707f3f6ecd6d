"""VoxelGrid (world <-> index, validation) and OccGeometry (build from a config dict, checks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.structures.occ_geometry import GEOMETRY_KEYS, OccGeometry, VoxelGrid, with_geometry
from mmdet3d.testing.geometry import OCC3D_GEOMETRY

#: 1 x 1 x 0.5 m cells over [0, 4) x [0, 2) x [0, 1)
SMALL = VoxelGrid(lower=(0, 0, 0), upper=(4, 2, 1), shape=(4, 2, 2))
#: cell corners, inner points, the upper corner and a point just below the lower one
POINTS = [[0.0, 0.0, 0.0], [1.0, 1.0, 0.5], [3.99, 1.99, 0.99], [4.0, 2.0, 1.0],
          [-0.01, 0.0, 0.0]]
INDICES = [[0, 0, 0], [1, 1, 1], [3, 1, 1], [4, 2, 2], [-1, 0, 0]]
INSIDE = [True, True, True, False, False]


def test_voxel_grid_sizes_and_layout():
    assert SMALL.voxel_size == (1.0, 1.0, 0.5)
    assert SMALL.pc_range == (0.0, 0.0, 0.0, 4.0, 2.0, 1.0)
    assert SMALL.shape == (4, 2, 2) and SMALL.model_layout_shape == (2, 2, 4)
    assert VoxelGrid([0, 0, 0], [4, 2, 1], [4, 2, 2]) == SMALL  # lists become tuples


def test_world_to_index_floors_cells_numpy_and_torch():
    index = SMALL.world_to_index(np.array(POINTS))
    assert index.dtype == np.int64 and index.tolist() == INDICES
    index = SMALL.world_to_index(torch.tensor(POINTS))
    assert index.dtype == torch.int64 and index.tolist() == INDICES
    assert SMALL.contains(np.array(POINTS)).tolist() == INSIDE
    assert SMALL.contains(torch.tensor(POINTS)).tolist() == INSIDE


def test_index_to_world_gives_cell_centres_and_round_trips():
    centres = SMALL.index_to_world(np.array([[0, 0, 0], [3, 1, 1]]))
    np.testing.assert_array_equal(centres, [[0.5, 0.5, 0.25], [3.5, 1.5, 0.75]])
    all_cells = torch.cartesian_prod(*(torch.arange(s) for s in SMALL.shape))  # (32, 3)
    assert torch.equal(SMALL.world_to_index(SMALL.index_to_world(all_cells)), all_cells)


def test_occ3d_grid_edges():
    grid = OccGeometry.build(OCC3D_GEOMETRY).label_grid
    points = np.array([[-40.0, -40.0, -1.0], [39.99, 0.0, 5.39], [0.2, 0.2, 0.3],
                       [40.0, 0.0, 0.0]])
    assert grid.world_to_index(points).tolist() == [[0, 0, 0], [199, 100, 15], [100, 100, 3],
                                                    [200, 100, 2]]
    assert grid.contains(points).tolist() == [True, True, True, False]
    np.testing.assert_allclose(grid.index_to_world(np.array([100, 100, 3])), [0.2, 0.2, 0.4])


@pytest.mark.parametrize('kwargs, message', [
    (dict(shape=(200, 200)), 'shape must be 3 numbers'),
    (dict(shape=(0, 2, 2)), 'shape must be positive'),
    (dict(shape=(4, 2.5, 2)), 'shape must be 3 integers'),
    (dict(lower=(0, 0, True)), 'lower must be 3 numbers'),
    (dict(upper=(4, 2, 0)), r'upper \[4.0, 2.0, 0.0\] must exceed lower'),
    (dict(upper='abc'), 'upper must be 3 numbers'),
])
def test_voxel_grid_validation_names_the_field(kwargs, message):
    fields = {**dict(lower=(0, 0, 0), upper=(4, 2, 1), shape=(4, 2, 2)), **kwargs}
    with pytest.raises(ValueError, match=message):
        VoxelGrid(**fields)


def test_build_from_the_paper_config():
    geometry = OccGeometry.build(OCC3D_GEOMETRY)
    assert geometry.label_grid == geometry.model_grid == VoxelGrid(
        (-40, -40, -1), (40, 40, 5.4), (200, 200, 16))
    assert geometry.grid_config == dict(x=[-40, 40, 0.4], y=[-40, 40, 0.4], z=[-1, 5.4, 0.4],
                                        depth=[1.0, 45.0, 0.5])  # the original's literal
    assert geometry.num_adj == 1 and geometry.grid_factors == (1, 1, 1)
    assert geometry.adjacent_frames == (1, 2)
    assert geometry.render_frame_ids == (-3, -2, -1, 0, 1, 2, 3)
    assert (geometry.lidar_key_ego, geometry.depth_along_ray, geometry.half_pixel_shift,
            geometry.align_corners, geometry.skip_copied_frames) == (False, False, True, True,
                                                                     False)
    assert OccGeometry.build(geometry) is geometry
    as_tuples = dict(OCC3D_GEOMETRY, render_frame_ids=tuple(range(-3, 4)))
    assert OccGeometry.build(as_tuples) == geometry and hash(OccGeometry.build(as_tuples))


def test_coarse_model_grid():
    geometry = OccGeometry.build(dict(OCC3D_GEOMETRY, model_grid_shape=[100, 100, 16],
                                      depth_bins=[1.0, 45.0, 2.0]))
    assert geometry.model_grid.pc_range == geometry.label_grid.pc_range
    assert geometry.grid_factors == (2, 2, 1)
    assert geometry.grid_config == dict(x=[-40, 40, 0.8], y=[-40, 40, 0.8], z=[-1, 5.4, 0.4],
                                        depth=[1.0, 45.0, 2.0])


def test_build_refuses_unknown_and_missing_keys():
    with pytest.raises(KeyError, match=r"unknown key\(s\) \['grid_size'\]; accepted: "
                                       r"\['label_grid', 'model_grid_shape'"):
        OccGeometry.build(dict(OCC3D_GEOMETRY, grid_size=[200, 200, 16]))
    partial = {k: v for k, v in OCC3D_GEOMETRY.items() if k != 'align_corners'}
    with pytest.raises(KeyError, match=r"geometry lacks \['align_corners'\] \(no defaults"):
        OccGeometry.build(partial)
    with pytest.raises(KeyError, match=r"geometry.label_grid lacks \['shape'\]"):
        OccGeometry.build(dict(OCC3D_GEOMETRY, label_grid=dict(lower=[0, 0, 0],
                                                               upper=[1, 1, 1])))
    with pytest.raises(TypeError, match='OccGeometry or its config dict'):
        OccGeometry.build([1, 2])
    assert len(GEOMETRY_KEYS) == len(OCC3D_GEOMETRY)


@pytest.mark.parametrize('override, message', [
    (dict(model_grid_shape=[30, 200, 16]), r'label_grid shape \[200, 200, 16\] is not a '
                                           r'multiple of model_grid shape \[30, 200, 16\]'),
    (dict(model_grid_shape=[200, 200]), 'shape must be 3 numbers'),
    (dict(depth_bins=[45.0, 1.0, 0.5]), 'depth_bins'),
    (dict(depth_bins=[1.0, 45.0]), 'depth_bins must be 3 numbers'),
    (dict(adjacent_frames=[]), 'adjacent_frames must be positive and increasing'),
    (dict(adjacent_frames=[2, 1]), 'adjacent_frames must be positive and increasing'),
    (dict(adjacent_frames=[0, 1]), 'adjacent_frames must be positive and increasing'),
    (dict(render_frame_ids=[-1, 1]), 'render_frame_ids must be distinct and contain 0'),
    (dict(render_frame_ids=[0, 0]), 'render_frame_ids must be distinct and contain 0'),
    (dict(render_frame_ids=[0, 1.5]), 'render_frame_ids must be a sequence of integers'),
    (dict(align_corners=1), 'align_corners must be True or False'),
    (dict(lidar_key_ego='no'), 'lidar_key_ego must be True or False'),
])
def test_build_validation_names_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        OccGeometry.build(dict(OCC3D_GEOMETRY, **override))


def test_with_geometry_hands_over_once():
    geometry = OccGeometry.build(OCC3D_GEOMETRY)
    cfg = dict(type='VolumeRenderer', samples_per_ray=8)
    assert with_geometry(cfg, geometry, 'renderer') == dict(cfg, geometry=geometry)
    assert 'geometry' not in cfg  # a copy
    same = dict(cfg, geometry=dict(OCC3D_GEOMETRY))  # the same geometry as a dict
    assert with_geometry(same, geometry, 'renderer')['geometry'] is geometry
    other = dict(cfg, geometry=dict(OCC3D_GEOMETRY, align_corners=False))
    with pytest.raises(ValueError, match='renderer sets a geometry of its own that differs'):
        with_geometry(other, geometry, 'renderer')
