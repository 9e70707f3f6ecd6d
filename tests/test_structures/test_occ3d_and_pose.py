"""The Occ3D metadata module and the pose helper against independent references."""
from __future__ import annotations

import numpy as np
import pytest
from pyquaternion import Quaternion

from mmdet3d.datasets.synthetic.classes import LIDARSEG_INDEX
from mmdet3d.structures import occ3d
from mmdet3d.structures.pose import pose_matrix, quat_to_rotmat, rigid_inverse


def test_grid_shape_is_the_range_over_the_voxel_size():
    lo, hi = np.array(occ3d.POINT_CLOUD_RANGE[:3]), np.array(occ3d.POINT_CLOUD_RANGE[3:])
    np.testing.assert_allclose((hi - lo) / occ3d.VOXEL_SIZE, occ3d.GRID_SHAPE)
    assert occ3d.GRID_LOWER == tuple(lo)


def test_label_set():
    assert occ3d.NUM_CLASSES == 18 and occ3d.FREE_LABEL == 17 == occ3d.NUM_SEMANTIC_CLASSES
    assert occ3d.CLASS_NAMES[occ3d.FREE_LABEL] == 'free' and len(set(occ3d.CLASS_NAMES)) == 18


@pytest.mark.parametrize('lidarseg, occ', [
    ('vehicle.car', 'car'), ('vehicle.bus.bendy', 'bus'), ('vehicle.bus.rigid', 'bus'),
    ('human.pedestrian.adult', 'pedestrian'), ('human.pedestrian.personal_mobility', 'pedestrian'),
    ('human.pedestrian.stroller', 'others'), ('movable_object.trafficcone', 'traffic_cone'),
    ('movable_object.barrier', 'barrier'), ('vehicle.construction', 'construction_vehicle'),
    ('flat.driveable_surface', 'driveable_surface'), ('flat.other', 'other_flat'),
    ('static.manmade', 'manmade'), ('static.vegetation', 'vegetation'), ('noise', 'others'),
    ('vehicle.ego', 'others')])
def test_lidarseg_table_by_name(lidarseg, occ):
    assert occ3d.CLASS_NAMES[occ3d.LIDARSEG_TO_OCC3D[LIDARSEG_INDEX[lidarseg]]] == occ
    assert not occ3d.LIDARSEG_TO_OCC3D.flags.writeable


def test_detection_classes_map_to_the_occ3d_class_of_the_same_name():
    for name, label in zip(occ3d.DETECTION_CLASSES, occ3d.DETECTION_TO_OCC3D):
        assert occ3d.CLASS_NAMES[label] == name
    moving = {occ3d.CLASS_NAMES[c] for c in occ3d.FLOW_CLASSES}
    assert moving == {'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle',
                      'pedestrian', 'trailer', 'truck'}


def test_flow_row_columns_tile_the_row():
    cols = [*range(11)[occ3d.FLOW_SRC], *range(11)[occ3d.FLOW_TGT], *range(11)[occ3d.FLOW_FLOOR],
            occ3d.FLOW_CLASS, occ3d.FLOW_FRAME]
    assert cols == list(range(occ3d.FLOW_ROW_WIDTH))


def test_quat_to_rotmat_equals_pyquaternion_and_normalises():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(5, 3, 4)) * 3.0  # not unit length
    got = quat_to_rotmat(quats)
    assert got.shape == (5, 3, 3, 3)
    for q, rot in zip(quats.reshape(-1, 4), got.reshape(-1, 3, 3)):
        np.testing.assert_allclose(rot, Quaternion(q).normalised.rotation_matrix, atol=1e-12)


def test_pose_matrix_and_rigid_inverse():
    rng = np.random.default_rng(1)
    trans, quats = rng.normal(size=(4, 3)) * 10, rng.normal(size=(4, 4))
    poses = pose_matrix(trans, quats)
    assert poses.shape == (4, 4, 4)
    np.testing.assert_array_equal(poses[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (4, 1)))
    np.testing.assert_array_equal(poses[:, :3, 3], trans)
    point = np.array([1.0, -2.0, 3.0, 1.0])
    np.testing.assert_allclose(poses[2] @ point,
                               np.append(quat_to_rotmat(quats[2]) @ point[:3] + trans[2], 1.0))
    for pose in poses:
        np.testing.assert_allclose(rigid_inverse(pose) @ pose, np.eye(4), atol=1e-12)
        np.testing.assert_allclose(rigid_inverse(pose), np.linalg.inv(pose), atol=1e-12)
