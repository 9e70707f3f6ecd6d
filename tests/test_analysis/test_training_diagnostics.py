"""Training diagnostics on hand-built rays, volumes and predictions with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.analysis.free_space import (PASS_EDGES, bin_labels, binned_counts, free_where_gt_free,
                                         occupancy_fields, ray_cell_passes, returns_volume,
                                         voxel_ranges)
from mmdet3d.analysis.training_diagnostics import TrainingDiagnostics, format_summary
from mmdet3d.evaluation.functional.occ_miou import occ_confusion_matrix, occ_miou
from mmdet3d.structures.voxel_grids import pool_majority, upsample_nearest

CAR, ROAD, FREE = 4, 11, 17
# a 4 x 4 x 2 grid of 1 m cells over [0, 4) x [0, 4) x [0, 2)
RANGE = (0.0, 0.0, 0.0, 4.0, 4.0, 2.0)
GRID = (4, 4, 2)


def passes(origins, directions, lengths, **kwargs) -> np.ndarray:
    return ray_cell_passes(torch.tensor(origins, dtype=torch.float32),
                           torch.tensor(directions, dtype=torch.float32),
                           torch.tensor(lengths, dtype=torch.float32), RANGE, GRID,
                           **kwargs).numpy()


def test_axis_aligned_ray_counts_the_cells_before_its_return():
    # along +x at y = 1.5, z = 0.5, returning at x = 2.6: cells x = 0, 1, 2 of row (y 1, z 0)
    counts = passes([[0.0, 1.5, 0.5]], [[1.0, 0.0, 0.0]], [2.6])
    expected = np.zeros(GRID, np.int64)
    expected[0:3, 1, 0] = 1
    np.testing.assert_array_equal(counts, expected)


def test_two_rays_through_one_cell_count_twice_and_a_long_ray_leaves_the_grid():
    counts = passes([[0.5, 0.5, 0.5], [0.5, 3.5, 0.5]], [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]],
                    [10.0, 1.2])
    expected = np.zeros(GRID, np.int64)
    expected[0, :, 0] = 1  # the first ray crosses the whole column and leaves the grid
    expected[0, 2:4, 0] += 1  # the second one returns at y = 2.3
    np.testing.assert_array_equal(counts, expected)


def test_diagonal_ray_and_near_and_outside_origin():
    d = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    counts = passes([[0.5, 0.5, 1.5]], [d.tolist()], [np.sqrt(2) * 3.0])  # (0.5,0.5) -> (3.5,3.5)
    expected = np.zeros(GRID, np.int64)
    for i in range(4):
        expected[i, i, 1] = 1  # centre-to-centre diagonals touch only the diagonal cells
    np.testing.assert_array_equal(counts, expected)
    # `near` skips the first metre; a ray that starts outside the grid enters it
    counts = passes([[-2.0, 0.5, 0.5]], [[1.0, 0.0, 0.0]], [4.5], near=1.0)
    expected = np.zeros(GRID, np.int64)
    expected[0:3, 0, 0] = 1  # x from -1 to 2.5
    np.testing.assert_array_equal(counts, expected)


def test_passes_are_chunk_independent_and_match_a_dense_reference():
    gen = torch.Generator().manual_seed(0)
    n = 50
    origins = torch.rand(n, 3, generator=gen) * torch.tensor([4.0, 4.0, 2.0])
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=1)
    lengths = torch.rand(n, generator=gen) * 5
    full = ray_cell_passes(origins, directions, lengths, RANGE, GRID, step=0.01)
    chunked = ray_cell_passes(origins, directions, lengths, RANGE, GRID, step=0.01, chunk=7)
    assert torch.equal(full, chunked)
    # reference: a python loop over rays with a fine step and sets of cells
    expected = np.zeros(GRID, np.int64)
    for o, d, length in zip(origins.double(), directions.double(), lengths.double()):
        cells = set()
        for t in np.arange(0.005, float(length), 0.01):
            p = (o + t * d).numpy()
            c = np.floor(p / np.array([1.0, 1.0, 1.0])).astype(int)
            if np.all(c >= 0) and np.all(c < np.array(GRID)):
                cells.add(tuple(c))
        for c in cells:
            expected[c] += 1
    np.testing.assert_array_equal(full.numpy(), expected)


def test_pool_majority_and_upsample():
    labels = np.full((4, 2, 2), FREE, np.uint8)
    labels[0, 0, 0] = labels[1, 0, 0] = CAR  # block (0, 0, 0): 2 CAR of 8 -> FREE
    labels[2:4, 0, :] = ROAD  # block (1, 0, 0): 4 ROAD, 4 FREE -> tie -> ROAD (smaller label)
    pooled = pool_majority(labels, (2, 2, 2))
    np.testing.assert_array_equal(pooled, np.array([FREE, ROAD]).reshape(2, 1, 1))
    up = upsample_nearest(pooled, (2, 2, 2))
    assert up.shape == (4, 2, 2)
    assert (up[:2] == FREE).all() and (up[2:] == ROAD).all()
    with pytest.raises(ValueError, match='multiple'):
        pool_majority(labels, (3, 2, 2))


def test_returns_volume_votes_per_cell_by_hand():
    pc_range = (0.0, 0.0, 0.0, 4.0, 2.0, 2.0)  # 4 x 2 x 2 cells of 1 m
    points = torch.tensor([[0.5, 0.5, 0.5], [0.9, 0.1, 0.2], [0.2, 0.7, 0.9],  # cell (0, 0, 0)
                           [3.5, 1.5, 1.5],  # cell (3, 1, 1)
                           [2.5, 0.5, 0.5], [2.5, 0.5, 0.6],  # cell (2, 0, 0): a 1-1 tie
                           [4.0, 0.5, 0.5], [-0.1, 0.5, 0.5]])  # outside
    labels = torch.tensor([CAR, ROAD, CAR, ROAD, CAR, ROAD, CAR, CAR])
    volume = returns_volume(points, labels, pc_range, (4, 2, 2))
    expected = np.full((4, 2, 2), FREE, np.uint8)
    expected[0, 0, 0] = CAR  # 2 car, 1 road
    expected[3, 1, 1] = ROAD
    expected[2, 0, 0] = min(CAR, ROAD)  # ties to the smaller label
    np.testing.assert_array_equal(volume, expected)


def test_binned_counts_and_labels():
    values = np.array([0.5, 5.0, 15.0, 15.0, 45.0])
    selected = np.array([True, True, True, True, False])
    flagged = np.array([False, True, True, False, True])
    counts = binned_counts(values, (0.0, 10.0, 20.0, np.inf), selected, flagged)
    np.testing.assert_array_equal(counts, [[2, 1], [2, 1], [0, 0]])
    assert bin_labels((0.0, 10.0, np.inf)) == ['0-10', '>=10']
    assert bin_labels(PASS_EDGES) == ['0-1', '1-10', '10-100', '>=100']


def test_voxel_ranges_are_horizontal_centre_distances():
    r = voxel_ranges((200, 200, 16), (-40, -40, -1, 40, 40, 5.4))
    assert r.shape == (200, 200, 16)
    assert r[100, 100, 0] == pytest.approx(np.hypot(0.2, 0.2))
    assert r[0, 100, 7] == pytest.approx(np.hypot(39.8, 0.2))


def test_occupancy_fields_and_semantics_only_prediction():
    labels = torch.tensor([[[CAR, FREE]]])  # (1, 1, 2)
    density, semantics = occupancy_fields(labels, logit_scale=7.0)  # the model's (1, Z, Y, X, C)
    assert density.shape == (1, 2, 1, 1, 1) and semantics.shape == (1, 2, 1, 1, 17)
    assert density.flatten().tolist() == [1.0, 0.0]
    assert semantics[0, 0, 0, 0].argmax() == CAR and semantics[0, 0, 0, 0, CAR] == 7.0
    assert semantics[0, 1, 0, 0].abs().sum() == 0
    gt = np.array([CAR, FREE, ROAD])
    np.testing.assert_array_equal(free_where_gt_free(gt, np.array([ROAD, CAR, ROAD])),
                                  [ROAD, FREE, ROAD])


def _hand_case():
    """GT (4, 2, 2) on a (2, 2, 2) model grid (factors 2, 1, 1) with known outcomes."""
    gt = np.full((4, 2, 2), FREE, np.uint8)
    gt[:, :, 0] = ROAD  # the ground layer
    gt[3, 1, 1] = CAR
    mask = np.ones_like(gt, dtype=bool)
    sigma = np.zeros((2, 2, 2))
    sigma[:, :, 0] = 1.0  # ground dense
    sigma[1, :, 1] = 0.3  # a haze over x in {2, 3}, z 1: occupied at tau 0.2, free at 0.35
    classes = np.full((2, 2, 2), ROAD)
    classes[1, 1, 1] = CAR
    ray_passes = np.zeros((2, 2, 2), np.int64)
    ray_passes[0] = 5  # rays cross only the x in {0, 1} half
    return gt, mask, sigma, classes, ray_passes


def test_accumulator_figures_on_a_hand_built_sample():
    gt, mask, sigma, classes, ray_passes = _hand_case()
    diag = TrainingDiagnostics(thresholds=[0.2, 0.35], tau=0.2,
                               pc_range=(0.0, 0.0, 0.0, 4.0, 2.0, 2.0))
    returns = np.full((2, 2, 2), FREE, np.uint8)
    returns[:, :, 0] = ROAD  # the rays' returns: the ground only
    diag.add_sample(gt, mask, sigma, classes, ray_passes, returns)
    s = diag.summary()
    # tau 0.2: the ROAD ground everywhere; the haze at x 2, 3 (z 1) is ROAD at y 0, CAR at y 1
    pred = np.full_like(gt, FREE)
    pred[:, :, 0] = ROAD
    pred[2:, 0, 1] = ROAD
    pred[2:, 1, 1] = CAR
    assert s['miou'] == occ_miou(occ_confusion_matrix(gt, pred, mask))
    # ROAD: TP 8, FP 2; CAR: TP 1, FP 1
    assert s['per_class_iou']['driveable_surface'] == 80.0
    assert s['per_class_iou']['car'] == 50.0
    assert s['tau_sweep']['0.2'] == s['miou'] == 65.0
    assert s['tau_sweep']['0.35'] == 50.0  # no haze, but the car is free too
    assert s['miou_semantics_only'] == 100.0
    # the GT pooled to the model grid: block (1, 1, 1) holds FREE and CAR -> CAR (tie)
    assert s['miou_grid_ceiling'] == 75.0
    assert s['miou_returns_volume'] == 50.0  # ROAD 100, CAR 0
    assert s['occupancy_iou'] == 75.0  # TP 9, FP 3
    assert s['cells_crossed_pct'] == 50.0 and s['scored_uncovered_pct'] == 50.0
    # GT-free voxels: 7, all at z 1; 3 predicted occupied, all in uncrossed cells (x 2, 3)
    assert s['false_occupied_by_height'] == {'0': None, '1': pytest.approx(100 * 3 / 7,
                                                                           abs=0.01)}
    assert s['false_occupied_by_passes'] == {'0-1': 100.0, '1-10': 0.0, '10-100': None,
                                             '>=100': None}
    assert s['missed_occupied_by_height'] == {'0': 0.0, '1': 0.0}  # nothing missed at 0.2
    # per class: ROAD 8 GT voxels, 10 predicted (2 haze voxels GT-free); CAR 1 GT voxel, 2
    # predicted (1 GT-free); the ceiling's CAR block covers the free voxel beside the car
    road, car = s['per_class']['driveable_surface'], s['per_class']['car']
    assert set(s['per_class']) == {'driveable_surface', 'car'}
    assert (road['iou'], road['ceiling'], road['gt_voxels']) == (80.0, 100.0, 8)
    assert (road['missed_occupied'], road['false_occupied']) == (0.0, 20.0)
    assert road['false_occupied_by_height'] == {0: 0.0, 1: 100.0}
    assert (car['iou'], car['ceiling'], car['missed_occupied'], car['false_occupied']) == (
        50.0, 50.0, 0.0, 50.0)
    assert (road['returns'], car['returns']) == (100.0, 0.0)
    assert car['missed_occupied_by_height'] == {0: None, 1: 0.0}
    assert s['miou_covered'] == 100.0
    assert s['miou_uncovered'] == occ_miou(occ_confusion_matrix(gt[2:], pred[2:]))
    # at 0.35 the haze is free: the car voxel (z 1, uncrossed, range ~3.8 m) is missed
    strict = TrainingDiagnostics(thresholds=[], tau=0.35, pc_range=(0.0, 0.0, 0.0, 4.0, 2.0, 2.0))
    strict.add_sample(gt, mask, sigma, classes, ray_passes)
    t = strict.summary()
    assert t['miou_returns_volume'] is None and t['per_class']['car']['returns'] is None
    assert t['missed_occupied_by_height'] == {'0': 0.0, '1': 100.0}
    assert t['missed_occupied_by_passes'] == {'0-1': 20.0, '1-10': 0.0, '10-100': None,
                                              '>=100': None}
    assert t['missed_occupied_by_range']['0-10'] == pytest.approx(100 / 9, abs=0.01)
    assert t['false_occupied_by_passes']['0-1'] == 0.0
    assert t['per_class']['car']['missed_occupied_by_height'] == {0: None, 1: 100.0}
    assert t['per_class']['car']['false_occupied'] is None  # nothing predicted as car
    text = format_summary(s)
    assert 'tau sweep' in text and 'GT-occupied voxels predicted free (%) by ray passes' in text
    assert ('driveable_surface      80.0 100.0 100.0        8    0.0   20.0   0.0/0.0 n/a/100.0'
            in text)


def test_render_entries_report_losses_and_binned_depth_errors():
    diag = TrainingDiagnostics(thresholds=[0.35], tau=0.35)
    diag.add_render('model', np.array([1.0, 12.0, 25.0]), np.array([2.0, 11.0, 28.0]),
                    {'loss_render_depth': 0.5})
    diag.add_render('model', np.array([3.0]), np.array([3.5]), {'loss_render_depth': 1.5})
    render = diag.summary()['render']['model']
    assert render['losses'] == {'loss_render_depth': 1.0}
    errors = render['median_depth_error_by_depth']
    assert errors['0-5'] == -0.75 and errors['10-20'] == 1.0 and errors['20-30'] == -3.0
    assert errors['5-10'] is None
