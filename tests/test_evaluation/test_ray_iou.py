"""RayIoU: ray caster on hand-built volumes and against a per-ray reference, LiDAR rays and
origins, and the metric against an independent loop implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmdet3d.evaluation.functional.ray_iou import (RayIoUAccumulator, cast_rays,
                                                   lidar_origins_in_ego, lidar_pitches,
                                                   lidar_ray_directions, ray_iou,
                                                   select_ray_origins)

UNIT_GRID = dict(pc_min=(0.0, 0.0, 0.0), voxel_size=1.0)
FREE = 17


def _occupied(shape=(8, 8, 4), voxels=()):
    occupied = torch.zeros(shape, dtype=torch.bool)
    for voxel in voxels:
        occupied[voxel] = True
    return occupied


def _cast_one(occupied, origin, direction, **geometry):
    """Cast a single ray; returns (hit, distance, voxel tuple)."""
    geometry = geometry or UNIT_GRID
    hit, distance, voxel = cast_rays(occupied, [origin], [direction], **geometry)
    return bool(hit[0]), float(distance[0]), tuple(voxel[0].tolist())


def _reference_cast(occupied, origin, direction, pc_min, voxel_size):
    """Per-ray reference: split the ray at every voxel-plane crossing and look up the voxel of
    each piece's midpoint; the distance of a voxel is where its piece ends."""
    occupied = np.asarray(occupied)
    size = np.array(occupied.shape)
    start = (np.asarray(origin, float) - np.asarray(pc_min, float)) / voxel_size
    unit = np.asarray(direction, float) / np.linalg.norm(direction)
    crossings = {0.0}
    for axis in range(3):
        if unit[axis] != 0:
            for plane in range(size[axis] + 1):
                t = (plane - start[axis]) / unit[axis]
                if t > 0:
                    crossings.add(t)
    crossings = sorted(crossings)
    result, entered = (False, math.nan, (-1, -1, -1)), False
    for t_in, t_out in zip(crossings[:-1], crossings[1:]):
        voxel = tuple(np.floor(start + unit * (t_in + t_out) / 2).astype(int).tolist())
        if all(0 <= v < s for v, s in zip(voxel, size)):
            entered = True
            result = (bool(occupied[voxel]), t_out * voxel_size, voxel)
            if result[0]:
                break
        elif entered:
            break
    return result


def _random_unit_vectors(rng, n):
    vectors = rng.normal(size=(n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- ray caster


@pytest.mark.parametrize('origin, direction, voxel, expected_distance', [
    ((0.5, 2.5, 1.5), (1, 0, 0), (5, 2, 1), 5.5),      # +x: enters at x=5, leaves at x=6
    ((3.5, 6.5, 1.5), (0, -1, 0), (3, 1, 1), 5.5),     # -y: leaves voxel y=1 at y=1
    ((2.5, 2.5, 0.5), (0, 0, 1), (2, 2, 3), 3.5),      # +z: leaves at z=4
    ((0.5, 0.5, 1.5), (0.6, 0.8, 0), (3, 4, 1), 5.625),  # oblique: leaves through y=5
])
def test_first_hit_distance_is_exit_of_hit_voxel(origin, direction, voxel, expected_distance):
    hit, distance, hit_voxel = _cast_one(_occupied(voxels=[voxel]), origin, direction)
    assert hit and hit_voxel == voxel
    assert distance == pytest.approx(expected_distance, abs=1e-12)


def test_grid_geometry_scales_distances():
    # origin 0.25 m above pc_min in x, i.e. in voxel (0, 0, 1); voxel x=5 ends 3.0 m above it
    occupied = _occupied(voxels=[(5, 0, 1)])
    hit, distance, voxel = _cast_one(occupied, (-1.75, -0.75, -0.25), (1, 0, 0),
                                     pc_min=(-2.0, -1.0, -1.0), voxel_size=0.5)
    assert hit and voxel == (5, 0, 1)
    assert distance == pytest.approx(3.0 - 0.25, abs=1e-12)


@pytest.mark.parametrize('direction, visited, skipped', [
    ((1, 1, 0), (0, 1, 0), (1, 0, 0)),   # x/y tie: y steps first
    ((1, 0, 1), (0, 0, 1), (1, 0, 0)),   # x/z tie: z steps first
    ((0, 1, 1), (0, 0, 1), (0, 1, 0)),   # y/z tie: z steps first
])
def test_edge_crossing_steps_z_then_y_then_x(direction, visited, skipped):
    origin, corner_t = (0.5, 0.5, 0.5), 0.5 * math.sqrt(2)
    hit, distance, voxel = _cast_one(_occupied(voxels=[visited]), origin, direction)
    assert hit and voxel == visited
    assert distance == pytest.approx(corner_t, abs=1e-12)  # zero-length visit
    far = tuple(2 * v for v in direction)
    hit, distance, voxel = _cast_one(_occupied(voxels=[skipped, far]), origin, direction)
    assert hit and voxel == far
    assert distance == pytest.approx(5 * corner_t, abs=1e-12)  # passes the skipped neighbour


def test_corner_crossing_visits_z_then_y_neighbours():
    skipped = [(1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 1)]
    hit, distance, voxel = _cast_one(_occupied(voxels=skipped + [(2, 2, 2)]), (0.5, 0.5, 0.5),
                                     (1, 1, 1))
    assert hit and voxel == (2, 2, 2)
    assert distance == pytest.approx(2.5 * math.sqrt(3), abs=1e-12)
    for visited in [(0, 0, 1), (0, 1, 1)]:
        hit, distance, voxel = _cast_one(_occupied(voxels=[visited]), (0.5, 0.5, 0.5),
                                         (1, 1, 1))
        assert hit and voxel == visited
        assert distance == pytest.approx(0.5 * math.sqrt(3), abs=1e-12)


def test_ray_leaving_grid_reports_last_voxel_and_grid_exit():
    hit, distance, voxel = _cast_one(_occupied(voxels=[(3, 3, 3)]), (0.5, 0.5, 0.5), (1, 0, 0))
    assert not hit and voxel == (7, 0, 0) and distance == pytest.approx(7.5)


def test_origin_inside_occupied_voxel_hits_it_at_its_exit():
    occupied = _occupied(voxels=[(2, 2, 1), (4, 2, 1)])
    hit, distance, voxel = _cast_one(occupied, (2.25, 2.5, 1.5), (1, 0, 0))
    assert hit and voxel == (2, 2, 1) and distance == pytest.approx(0.75)
    hit, distance, voxel = _cast_one(occupied, (2.25, 2.5, 1.5), (-1, 0, 0))
    assert hit and voxel == (2, 2, 1) and distance == pytest.approx(0.25)


def test_origin_outside_grid_enters_or_never_hits():
    occupied = _occupied(voxels=[(2, 2, 0)])
    hit, distance, voxel = _cast_one(occupied, (2.5, 2.5, 5.5), (0, 0, -1))
    assert hit and voxel == (2, 2, 0) and distance == pytest.approx(5.5)
    for origin, direction in [((2.5, 2.5, 5.5), (0, 0, 1)), ((9.5, 2.5, 1.5), (0, 1, 0)),
                              ((9.5, 2.5, 1.5), (1, 0.1, 0))]:
        hit, distance, voxel = _cast_one(occupied, origin, direction)
        assert not hit and math.isnan(distance) and voxel == (-1, -1, -1)


def test_origin_voxel_is_truncated_toward_zero_like_dvr():
    """An origin within one voxel below pc_min counts as in voxel 0 (C ``int()``)."""
    occupied = _occupied(voxels=[(0, 2, 1)])
    hit, distance, voxel = _cast_one(occupied, (-0.5, 2.5, 1.5), (-1, 0, 0))
    assert hit and voxel == (0, 2, 1) and distance == pytest.approx(-0.5)


def test_zero_direction_is_rejected():
    with pytest.raises(ValueError, match='non-zero'):
        cast_rays(_occupied(), [(0.5, 0.5, 0.5)], [(0, 0, 0)], **UNIT_GRID)


@pytest.mark.parametrize('impl', ['numba', 'torch'])
def test_vectorised_caster_equals_per_ray_reference(impl):
    rng = np.random.default_rng(0)
    for density in (0.05, 0.2, 0.5):
        occupied = rng.random((9, 7, 5)) < density
        # origins inside the grid and some beyond its upper faces
        origins = rng.uniform(0, 1, size=(300, 3)) * (np.array([9, 7, 5]) + 3)
        directions = _random_unit_vectors(rng, 300)
        directions[:40, rng.integers(0, 3)] = 0  # rays in axis planes
        hit, distance, voxel = cast_rays(torch.from_numpy(occupied), origins, directions,
                                         **UNIT_GRID, impl=impl)
        for i in range(len(origins)):
            ref_hit, ref_distance, ref_voxel = _reference_cast(occupied, origins[i],
                                                               directions[i], **UNIT_GRID)
            assert bool(hit[i]) == ref_hit and tuple(voxel[i].tolist()) == ref_voxel, i
            np.testing.assert_allclose(float(distance[i]), ref_distance, rtol=0, atol=1e-9)
        assert hit.any() and (~hit).any()


def test_numba_and_torch_casters_are_bit_identical():
    """Including origins outside the grid, rays in axis planes and exact voxel-corner ties."""
    rng = np.random.default_rng(2)
    occupied = torch.from_numpy(rng.random((12, 10, 6)) < 0.08)
    origins = rng.uniform(-1, 13, size=(4000, 3))
    origins[:500] = np.floor(origins[:500]) + 0.5
    directions = _random_unit_vectors(rng, 4000)
    directions[500:700, 2] = 0
    directions[700:800, :2] = 0
    directions[:300] = [1, 1, 1]
    numba_result = cast_rays(occupied, origins, directions, **UNIT_GRID, impl='numba')
    torch_result = cast_rays(occupied, origins, directions, **UNIT_GRID, impl='torch')
    for a, b in zip(numba_result, torch_result):
        torch.testing.assert_close(a, b, equal_nan=True, rtol=0, atol=0)
    assert numba_result[0].any() and torch.isnan(numba_result[1]).any()


def test_unknown_caster_is_refused():
    with pytest.raises(ValueError, match="impl must be 'auto', 'numba' or 'torch'"):
        cast_rays(_occupied(), [(0.5, 0.5, 0.5)], [(1, 0, 0)], **UNIT_GRID, impl='cuda')


@pytest.mark.cuda
def test_cuda_caster_equals_cpu():
    rng = np.random.default_rng(1)
    occupied = torch.from_numpy(rng.random((20, 20, 8)) < 0.05)
    origins = rng.uniform(0, 8, size=(5000, 3)) + [6, 6, 0]
    directions = _random_unit_vectors(rng, 5000)
    cpu = cast_rays(occupied, origins, directions, **UNIT_GRID)
    cuda = cast_rays(occupied.cuda(), origins, directions, **UNIT_GRID)
    for a, b in zip(cpu, cuda):
        torch.testing.assert_close(a, b.cpu(), equal_nan=True)


# ----------------------------------------------------------------------------- rays, origins


def test_lidar_pitches():
    pitches = lidar_pitches()
    expected_first = [-(math.pi / 2 - math.atan(k)) for k in range(1, 11)]
    assert len(pitches) == 39
    assert pitches[0] == pytest.approx(-math.pi / 4)
    np.testing.assert_allclose(pitches[:10], expected_first, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.diff(pitches[9:]), pitches[9] - pitches[8], rtol=0,
                               atol=1e-12)
    assert pitches[-2] < 0.21 <= pitches[-1]


def test_lidar_ray_directions():
    directions = lidar_ray_directions()
    pitches = lidar_pitches()
    assert directions.shape == (14040, 3) and directions.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1, atol=1e-6)
    per_pitch = directions.reshape(39, 360, 3)
    np.testing.assert_allclose(per_pitch[:, :, 2], np.sin(pitches)[:, None] * np.ones(360),
                               atol=1e-7)
    np.testing.assert_allclose(per_pitch[0, 0], [math.cos(pitches[0]), 0, math.sin(pitches[0])],
                               atol=1e-7)
    azimuth = np.degrees(np.arctan2(per_pitch[5, :, 1], per_pitch[5, :, 0])) % 360
    np.testing.assert_allclose(azimuth, np.arange(360), atol=1e-4)


def _pose(yaw, translation):
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    pose[:3, 3] = translation
    return pose


def test_lidar_origins_in_ego_of_a_car_driving_forward():
    ego2global_key = _pose(math.pi / 2, (100.0, 200.0, 0.0))
    lidar2ego = _pose(0.0, (1.0, 0.0, 1.8))
    forward = [-10.0, 0.0, 5.0]  # keyframe positions along the key ego x axis
    lidar2global = np.stack([ego2global_key @ _pose(0.0, (x, 0, 0)) @ lidar2ego
                             for x in forward])
    np.testing.assert_allclose(lidar_origins_in_ego(ego2global_key, lidar2global),
                               [[x + 1.0, 0.0, 1.8] for x in forward], atol=1e-9)


def test_lidar_origins_in_ego_equals_lidar_frame_route():
    """Through the key LiDAR frame, as SparseOcc composes it, with general rotations."""
    rng = np.random.default_rng(2)

    def random_pose():
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        pose = np.eye(4)
        pose[:3, :3] = rotation * np.sign(np.linalg.det(rotation))
        pose[:3, 3] = rng.normal(size=3) * 50
        return pose

    ego2global = [random_pose() for _ in range(4)]
    lidar2ego = random_pose()
    lidar2global = np.stack([e @ lidar2ego for e in ego2global])
    key = 2
    key_lidar_from_global = np.linalg.inv(lidar2global[key])
    expected = [(lidar2ego @ key_lidar_from_global @ pose)[:3, 3] for pose in lidar2global]
    np.testing.assert_allclose(lidar_origins_in_ego(ego2global[key], lidar2global), expected,
                               atol=1e-9)


def test_select_ray_origins():
    xs = [-50.0, -38.5, -30, -20, -10, 0, 39.0, 5, 10, 20, 30, 38.9]
    origins = np.array([[x, 0.1 * i, 1.8] for i, x in enumerate(xs)])
    origins[3, 1] = -45.0  # outside in y
    kept = [1, 2, 4, 5, 7, 8, 9, 10, 11]  # |x| < 39 and |y| < 39 (39.0 itself is out)
    # round(linspace(0, 8, 8)) = [0, 1, 2, 3, 5, 6, 7, 8]
    expected = origins[[kept[i] for i in (0, 1, 2, 3, 5, 6, 7, 8)]]
    np.testing.assert_array_equal(select_ray_origins(origins), expected)
    np.testing.assert_array_equal(select_ray_origins(origins[:6]), origins[[1, 2, 4, 5]])
    np.testing.assert_array_equal(np.round(np.linspace(0, 8, 8)), [0, 1, 2, 3, 5, 6, 7, 8])


# ----------------------------------------------------------------------------- metric


def _slow_ray_iou(preds, gts, origins_list, directions, pc_min, voxel_size,
                  thresholds=(1.0, 2.0, 4.0), num_classes=17):
    """Counts ray by ray with Python loops; returns (thresholds, classes) IoU in [0, 1]."""
    true_positives = np.zeros((len(thresholds), num_classes))
    gt_counts, pred_counts = np.zeros(num_classes), np.zeros(num_classes)
    for pred, gt, origins in zip(preds, gts, origins_list):
        for origin in origins:
            for direction in directions:
                gt_hit, gt_distance, gt_voxel = _reference_cast(gt != FREE, origin, direction,
                                                                pc_min, voxel_size)
                if not gt_hit:
                    continue
                gt_class = int(gt[gt_voxel])
                pred_hit, pred_distance, pred_voxel = _reference_cast(
                    pred != FREE, origin, direction, pc_min, voxel_size)
                pred_class = int(pred[pred_voxel]) if pred_hit else FREE
                if gt_class < num_classes:
                    gt_counts[gt_class] += 1
                if pred_class < num_classes:
                    pred_counts[pred_class] += 1
                for j, threshold in enumerate(thresholds):
                    if pred_class == gt_class < num_classes and \
                            abs(pred_distance - gt_distance) < threshold:
                        true_positives[j, gt_class] += 1
    with np.errstate(invalid='ignore'):
        return true_positives / (gt_counts + pred_counts - true_positives)


def _random_labels(rng, shape, density, classes):
    labels = np.full(shape, FREE, dtype=np.uint8)
    occupied = rng.random(shape) < density
    labels[occupied] = rng.choice(classes, size=occupied.sum())
    return labels


def test_metric_equals_slow_loop_implementation():
    rng = np.random.default_rng(3)
    shape, geometry = (10, 8, 5), dict(pc_min=(-2.0, -2.0, -0.5), voxel_size=0.5)
    classes = [0, 1, 4, 11, 16]
    gts = [_random_labels(rng, shape, 0.12, classes) for _ in range(3)]
    # predictions: the GT with some voxels relabelled, dropped or added
    preds = []
    for gt in gts:
        pred = gt.copy()
        pred[rng.random(shape) < 0.3] = FREE
        extra = rng.random(shape) < 0.05
        pred[extra] = rng.choice(classes, size=extra.sum())
        preds.append(pred)
    origins_list = [rng.uniform([-1.5, -1.5, 0], [2.5, 1.5, 2], size=(2, 3)) for _ in gts]
    directions = _random_unit_vectors(rng, 80)

    accumulator = RayIoUAccumulator(directions=directions, **geometry)
    for pred, gt, origins in zip(preds, gts, origins_list):
        accumulator.add(pred, gt, origins)
    expected = _slow_ray_iou(preds, gts, origins_list, directions, **geometry)
    assert np.isfinite(expected[:, classes]).all()
    np.testing.assert_allclose(accumulator.per_class_iou(), expected, rtol=0, atol=1e-12)

    result = ray_iou(preds, gts, origins_list, directions=directions, **geometry)
    for j, threshold in enumerate((1, 2, 4)):
        assert result[f'RayIoU@{threshold}'] == pytest.approx(np.nanmean(expected[j]) * 100)
        assert result[f'RayIoU@{threshold}_car'] == pytest.approx(expected[j, 4] * 100)
        assert math.isnan(result[f'RayIoU@{threshold}_bus'])
    assert result['RayIoU'] == pytest.approx(np.nanmean(expected) * 100)


def test_metric_counts_wrong_distance_in_pred_and_drops_free_gt_rays():
    gt = np.full((8, 8, 4), FREE, dtype=np.uint8)
    pred = gt.copy()
    gt[2, 1, 1] = 1           # ray +x hits class 1 at 2.5 m (exit of x=2 from x=0.5)
    pred[5, 1, 1] = 1         # ... predicted at 5.5 m
    pred[0, 4, 1] = 2         # ray +y: free in GT, so the class-2 prediction is not counted
    accumulator = RayIoUAccumulator(directions=[(1, 0, 0), (0, 1, 0)], **UNIT_GRID)
    accumulator.add(pred, gt, [(0.5, 1.5, 1.5)])
    np.testing.assert_array_equal(accumulator.gt_counts[:3], [0, 1, 0])
    np.testing.assert_array_equal(accumulator.pred_counts[:3], [0, 1, 0])
    np.testing.assert_array_equal(accumulator.true_positives[:, 1], [0, 0, 1])
    result = accumulator.compute()
    assert (result['RayIoU@1'], result['RayIoU@2'], result['RayIoU@4']) == (0.0, 0.0, 100.0)
    assert math.isnan(result['RayIoU@1_bicycle'])


def test_perfect_prediction_on_occ3d_grid_is_100():
    gt = np.full((200, 200, 16), FREE, dtype=np.uint8)
    gt[:, :, :2] = 11                      # driveable surface
    gt[110:115, 95:105, 2:6] = 4           # car ahead
    gt[60:70, 130:150, 2:10] = 15          # building
    gt[100:101, 80:81, 3:5] = 0            # 'others' pole
    result = ray_iou([torch.from_numpy(gt)], [gt], [np.array([[0.94, 0.0, 1.84]])])
    assert result['RayIoU'] == result['RayIoU@1'] == result['RayIoU@4'] == 100.0
    assert result['RayIoU@1_car'] == 100.0 and math.isnan(result['RayIoU@1_bus'])


def test_shifted_prediction_loses_at_1m_not_at_4m():
    """A closed spherical room around the origin; the prediction is moved 3 voxels (1.2 m)."""
    size, voxel_size = 30, 0.4
    centres = (np.arange(size) + 0.5) * voxel_size - 6.0
    x, y, z = np.meshgrid(centres, centres, centres, indexing='ij')
    gt = np.where(np.sqrt(x**2 + y**2 + z**2) >= 4.4, 4, FREE).astype(np.uint8)
    pred = np.roll(gt, 3, axis=0)  # the wrapped slabs are wall anyway
    geometry = dict(pc_min=(-6.0, -6.0, -6.0), voxel_size=voxel_size)
    origins = [np.array([[0.1, -0.05, 0.07]])]
    assert ray_iou([gt], [gt], origins, **geometry)['RayIoU'] == 100.0
    result = ray_iou([pred], [gt], origins, **geometry)
    assert result['RayIoU@4'] == 100.0
    assert 0.0 < result['RayIoU@1'] < 90.0
    assert result['RayIoU@1'] <= result['RayIoU@2'] <= result['RayIoU@4']
    assert result['RayIoU'] == pytest.approx(
        (result['RayIoU@1'] + result['RayIoU@2'] + result['RayIoU@4']) / 3)


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match='differs from GT shape'):
        ray_iou([np.full((4, 4, 2), FREE)], [np.full((4, 4, 3), FREE)], [np.zeros((1, 3))],
                **UNIT_GRID)
    with pytest.raises(ValueError, match='origin sets'):
        ray_iou([np.full((4, 4, 2), FREE)], [], [], **UNIT_GRID)
