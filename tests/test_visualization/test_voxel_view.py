"""3-D view: orientation of the virtual camera, disagreement codes, a full-size volume."""
from __future__ import annotations

import time

import numpy as np
import pytest

from mmdet3d.structures.occ3d import FREE_LABEL, GRID_SHAPE
from mmdet3d.visualization.occ_palette import OCC3D_PALETTE
from mmdet3d.visualization.voxel_faces import exposed_faces, occupied_voxels
from mmdet3d.visualization.voxel_view import (DISAGREEMENT_PALETTE, FALSE_OCCUPIED, MISSED,
                                              WRONG_CLASS, Viewpoint, disagreement_volume,
                                              render_voxel_view, voxel_view_image)

CAR, TRUCK, ROAD = 4, 10, 11


def _street() -> np.ndarray:
    """(200, 200, 16) volume: road, a car ahead-left and a truck ahead-right of the ego."""
    vol = np.full(GRID_SHAPE, FREE_LABEL, np.uint8)
    vol[..., 1] = ROAD  # z in [-0.6, -0.2]
    vol[140:150, 130:135, 2:6] = CAR  # x ~ +17 m, y ~ +13 m (left)
    vol[140:160, 65:72, 2:9] = TRUCK  # x ~ +18 m, y ~ -13 m (right)
    return vol


def test_default_view_looks_forward_from_behind_and_above():
    vol = _street()
    camera = Viewpoint().camera(320, 210)
    assert camera.centre[0] < 0 and camera.centre[2] > 10
    _, labels = render_voxel_view(exposed_faces(vol, occupied_voxels(vol)), camera)
    ego = len(OCC3D_PALETTE)
    rows = {k: np.nonzero(labels == k) for k in (CAR, TRUCK, ego)}
    assert all(len(r[0]) > 20 for r in rows.values())
    assert rows[CAR][1].mean() < rows[ego][1].mean() < rows[TRUCK][1].mean()  # left | right
    assert rows[CAR][0].mean() < rows[ego][0].mean()  # ahead = higher in the image
    assert (labels == ROAD).sum() > 0.3 * labels.size


def test_disagreement_codes():
    gt = np.full((2, 2, 2), FREE_LABEL, np.uint8)
    pred = gt.copy()
    gt[0, 0, 0], pred[0, 0, 0] = CAR, TRUCK
    pred[1, 0, 0] = CAR
    gt[0, 1, 0] = CAR
    gt[1, 1, 1] = pred[1, 1, 1] = ROAD
    codes = disagreement_volume(gt, pred)
    assert codes[0, 0, 0] == WRONG_CLASS and codes[1, 0, 0] == FALSE_OCCUPIED
    assert codes[0, 1, 0] == MISSED and codes.sum() == WRONG_CLASS + FALSE_OCCUPIED + MISSED
    mask = np.ones_like(gt)
    mask[0] = 0
    assert disagreement_volume(gt, pred, mask).sum() == FALSE_OCCUPIED
    with pytest.raises(ValueError, match='differ'):
        disagreement_volume(gt, pred[:1])


def test_full_size_view_is_fast_and_shows_the_disagreement():
    gt = _street()
    pred = gt.copy()
    pred[pred == CAR] = TRUCK
    mask = np.ones(GRID_SHAPE, np.uint8)
    start = time.perf_counter()
    image = voxel_view_image(pred, gt, mask, title='street', panel_size=(320, 210))
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0  # about 0.2 s at 200x200x16 on one core
    assert image.shape[1] == 3 * 320 + 2 * 4
    third = image[:, 2 * (320 + 4):]
    wrong = (third == np.round(DISAGREEMENT_PALETTE[WRONG_CLASS] * 1.0)).all(-1)
    assert wrong.sum() > 10  # the car's top faces (unshaded) in the disagreement panel
    only_pred = voxel_view_image(pred, panel_size=(320, 210))
    assert only_pred.shape[1] == 320
