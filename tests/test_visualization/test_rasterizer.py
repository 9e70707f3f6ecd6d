"""Exposed voxel faces and the z-buffer rasteriser on hand-built volumes and cameras."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from mmdet3d.structures.occ3d import FREE_LABEL
from mmdet3d.visualization.rasterizer import (PinholeCamera, look_at_camera, rasterize_quads,
                                              render_faces)
from mmdet3d.visualization.voxel_faces import (FACE_NORMALS, FACE_SHADE, exposed_faces,
                                               merge_face_runs, occupied_voxels)
from mmdet3d.visualization.occ_palette import OCC3D_PALETTE

CAR, TRUCK, ROAD = 4, 10, 11
UNIT_RANGE = (0.0, 0.0, 0.0, 8.0, 8.0, 8.0)  # 8x8x8 volumes of 1 m voxels


def _volume(*voxels: tuple[int, int, int, int]) -> np.ndarray:
    vol = np.full((8, 8, 8), FREE_LABEL, np.uint8)
    for x, y, z, label in voxels:
        vol[x, y, z] = label
    return vol


def _faces(vol: np.ndarray):
    return exposed_faces(vol, occupied_voxels(vol), UNIT_RANGE)


def test_exposed_faces_of_two_voxels_point_outwards():
    faces = _faces(_volume((2, 3, 4, CAR), (3, 3, 4, TRUCK)))
    assert len(faces) == 10  # 12 faces, the shared pair is hidden
    normals = np.cross(faces.corners[:, 1] - faces.corners[:, 0],
                       faces.corners[:, 2] - faces.corners[:, 0])
    np.testing.assert_allclose(normals, FACE_NORMALS[faces.directions])  # unit squares
    centre = faces.corners.mean(1)
    voxel_centre = faces.voxels + 0.5
    np.testing.assert_allclose(centre - voxel_centre, 0.5 * FACE_NORMALS[faces.directions])
    assert sorted(faces.labels.tolist()) == [CAR] * 5 + [TRUCK] * 5
    np.testing.assert_array_equal(faces.colors()[faces.directions == 5],
                                  [OCC3D_PALETTE[CAR], OCC3D_PALETTE[TRUCK]])  # top: unshaded
    bottom = faces.colors()[(faces.directions == 4) & (faces.labels == CAR)][0]
    np.testing.assert_array_equal(bottom, np.round(OCC3D_PALETTE[CAR] * FACE_SHADE[4]))


def test_faces_at_the_grid_border_and_the_mask():
    vol = np.full((2, 2, 2), ROAD, np.uint8)
    assert len(exposed_faces(vol, occupied_voxels(vol))) == 24  # outside the grid counts as free
    mask = np.ones_like(vol)
    mask[0] = 0
    assert len(exposed_faces(vol, occupied_voxels(vol, mask))) == 16
    with pytest.raises(ValueError, match='mask shape'):
        occupied_voxels(vol, mask[:1])
    with pytest.raises(ValueError, match='must be \\(X, Y, Z\\)'):
        occupied_voxels(vol[0])


def test_merged_runs_cover_the_same_surface():
    vol = np.full((8, 8, 8), FREE_LABEL, np.uint8)
    vol[:, :, 0] = ROAD
    vol[2:5, 3, 1:3] = CAR
    faces = _faces(vol)
    merged = merge_face_runs(faces)
    assert len(merged) < len(faces) / 3

    def area(f, direction, label):
        keep = (f.directions == direction) & (f.labels == label)
        c = f.corners[keep]
        return np.linalg.norm(np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]), axis=1).sum()

    for direction in range(6):
        for label in (ROAD, CAR):
            assert area(merged, direction, label) == pytest.approx(area(faces, direction, label))
    normals = np.cross(merged.corners[:, 1] - merged.corners[:, 0],
                       merged.corners[:, 2] - merged.corners[:, 0])
    assert np.all(np.einsum('fk,fk->f', normals, FACE_NORMALS[merged.directions]) > 0)


def _camera(eye: tuple[float, float, float] = (-6.0, 3.7, 5.2)) -> PinholeCamera:
    """80x60 camera at ``eye`` looking along +x (ego): x right = -y, y down = -z."""
    ego2cam = np.eye(4)
    ego2cam[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    ego2cam[:3, 3] = -ego2cam[:3, :3] @ np.array(eye)
    intrinsic = np.array([[120.0, 0, 41.3], [0, 124.0, 28.6], [0, 0, 1]])
    return PinholeCamera(intrinsic, ego2cam, 80, 60)


def test_a_voxel_lands_on_the_pixels_its_corners_project_to():
    camera = _camera()
    vol = _volume((3, 4, 4, CAR))  # ahead, off the optical axis: 3 faces visible
    faces = _faces(vol)
    _, raster = render_faces(faces, camera)
    corners = np.array([[x, y, z] for x in (3, 4) for y in (4, 5) for z in (4, 5)], float)
    uv, depth = camera.project(corners)
    assert np.all(depth > 0)
    hull = ConvexHull(uv).equations  # (E, 3): inside where n . p + c <= 0
    jj, ii = np.mgrid[:camera.height, :camera.width]
    centres = np.stack([ii + 0.5, jj + 0.5], -1).reshape(-1, 2)
    signed = (centres @ hull[:, :2].T + hull[:, 2]).max(1).reshape(camera.height, camera.width)
    covered = raster.covered
    assert covered.sum() > 50
    assert np.all(covered[signed < -1e-6]) and not np.any(covered[signed > 1e-6])
    assert np.all(faces.labels[raster.face[covered]] == CAR)
    # the image is the one the intrinsics describe: a 2x smaller image halves every coordinate
    small = camera.resized(camera.width // 2, camera.height // 2)
    np.testing.assert_allclose(small.project(corners)[0], uv / 2)


def test_the_nearest_voxel_hides_the_one_behind_it():
    camera = _camera(eye=(-6.0, 4.5, 4.5))  # on the axis of both voxels
    near, far = (3, 4, 4, CAR), (5, 4, 4, TRUCK)  # same ray, the truck 2 m further
    both = render_faces(_faces(_volume(near, far)), camera)[1]
    faces = _faces(_volume(near, far))
    seen = faces.labels[both.face[both.covered]]
    alone = render_faces(_faces(_volume(near)), camera)[1]
    far_alone = render_faces(_faces(_volume(far)), camera)[1]
    # the far truck's silhouette is inside the car's: it is hidden entirely
    assert np.all(far_alone.covered <= alone.covered) and far_alone.covered.sum() > 10
    assert set(seen.tolist()) == {CAR}
    np.testing.assert_array_equal(both.covered, alone.covered)
    # depth of the car's front face (plane x = 3, camera at x = -6): 9 m at every pixel of it
    front = both.covered & (faces.directions[np.maximum(both.face, 0)] == 0)
    assert front.sum() > 10
    np.testing.assert_allclose(both.depth[front], 9.0)
    assert np.all(np.isinf(both.depth[~both.covered]))


def test_voxels_behind_or_beside_the_camera_are_not_drawn():
    camera = _camera()
    behind = _faces(_volume((0, 4, 4, CAR)))  # x in [0, 1]: ahead of the camera at x = -6
    assert render_faces(behind, camera)[1].covered.any()
    moved = look_at_camera([4.5, 4.5, 4.5], [8.0, 4.5, 4.5], 60.0, 40, 30)  # inside grid
    faces = _faces(_volume((1, 4, 4, CAR), (6, 4, 4, TRUCK)))
    raster = render_faces(faces, moved)[1]
    assert set(faces.labels[raster.face[raster.covered]].tolist()) == {TRUCK}  # car behind


def test_look_at_camera_axes():
    camera = look_at_camera([-10.0, 0.0, 5.0], [0.0, 0.0, 5.0], 90.0, 100, 50)
    uv, depth = camera.project(np.array([[0.0, 0.0, 5.0], [0.0, 10.0, 5.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [50, 25])
    assert uv[1, 0] < 50 and uv[2, 1] > 25  # +y (left) to the left, down is down
    np.testing.assert_allclose(depth, 10.0)
    np.testing.assert_allclose(camera.centre, [-10, 0, 5])
    with pytest.raises(ValueError, match='vertically aligned'):
        look_at_camera([0, 0, 10], [0, 0, 0], 60, 10, 10)


def test_rasterize_in_chunks_matches_one_pass(monkeypatch):
    import mmdet3d.visualization.rasterizer as rasterizer
    rng = np.random.default_rng(0)
    vol = np.where(rng.random((8, 8, 8)) < 0.2, CAR, FREE_LABEL).astype(np.uint8)
    faces = _faces(vol)
    camera = look_at_camera([-6.0, -3.0, 12.0], [4.0, 4.0, 3.0], 70.0, 64, 48)
    once = rasterize_quads(faces.corners, camera)
    monkeypatch.setattr(rasterizer, 'CHUNK_CANDIDATES', 64)
    chunked = rasterize_quads(faces.corners, camera)
    np.testing.assert_array_equal(once.depth, chunked.depth)
    np.testing.assert_array_equal(once.covered, chunked.covered)
    # every pixel shows the face whose depth it stores (ties only on shared edges)
    both_sides = rasterize_quads(faces.corners, camera, cull_back_faces=False)
    np.testing.assert_allclose(both_sides.depth, once.depth)
