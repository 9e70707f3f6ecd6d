"""Camera overlay: the sample's cameras agree with GenerateRays; overlay pictures and errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.ray_generation import GenerateRays
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.occ3d import FREE_LABEL, POINT_CLOUD_RANGE
from mmdet3d.structures.pose import pose_matrix
from mmdet3d.testing.geometry import occ3d_geometry
from mmdet3d.visualization.camera_overlay import (CAMERA_NAMES, camera_overlay_image,
                                                  camera_overlays, load_camera_image,
                                                  sample_cameras)
from mmdet3d.visualization.rasterizer import render_faces
from mmdet3d.visualization.voxel_faces import exposed_faces, occupied_voxels

CAR = 4
SHAPE = (40, 40, 8)  # 2 m x 2 m x 0.8 m voxels over the Occ3D range


def _image_sizes(info: dict) -> dict[str, tuple[int, int]]:
    return {cam: load_camera_image(info, cam).shape[1::-1] for cam in CAMERA_NAMES}


def _lidar_points_in_e0() -> np.ndarray:
    """(P, 3) points around the ego vehicle at voxel centres of SHAPE (E0 frame)."""
    rng = np.random.default_rng(0)
    size = (np.array(POINT_CLOUD_RANGE[3:]) - POINT_CLOUD_RANGE[:3]) / SHAPE
    voxels = np.stack([rng.integers(8, 32, 60), rng.integers(8, 32, 60),
                       rng.integers(1, 7, 60)], 1)
    far = np.abs(voxels[:, :2] - 20).max(1) >= 3  # not on top of the cameras
    return POINT_CLOUD_RANGE[:3] + (voxels[far] + 0.5) * size


def _run_generate_rays(info: dict, tmp_path, points_e0: np.ndarray):
    """GenerateRays on the key frame of ``info`` with LiDAR ``points_e0``, no augmentation."""
    lidar2ego = pose_matrix(info['lidar2ego_translation'], info['lidar2ego_rotation'])
    points = (points_e0 - lidar2ego[:3, 3]) @ lidar2ego[:3, :3]  # E0 -> LiDAR sensor frame
    lidar = np.concatenate([points, np.zeros((len(points), 2))], 1).astype(np.float32)
    lidar.tofile(tmp_path / 'lidar.bin')
    np.savez(tmp_path / 'panoptic.npz', data=np.full(len(points), 17 * 1000))  # lidarseg car
    frame = dict(info, lidar_path=str(tmp_path / 'lidar.bin'),
                 panoptic_path=str(tmp_path / 'panoptic.npz'))
    width, height = _image_sizes(info)['CAM_FRONT']
    n = len(CAMERA_NAMES)
    eye = torch.eye(4).repeat(n, 1, 1)
    inputs = CameraInputs(
        imgs=torch.zeros(n, 3, height, width), sensor2egos=eye, ego2globals=eye,
        intrins=torch.from_numpy(np.stack([info['cams'][c]['cam_intrinsic']
                                           for c in CAMERA_NAMES])).float(),
        post_rots=torch.eye(3).repeat(n, 1, 1), post_trans=torch.zeros(n, 3), bda=torch.eye(3))
    results = dict(render_frames=[frame], img_inputs=inputs, cam_names=list(CAMERA_NAMES))
    transform = GenerateRays(occ3d_geometry(render_frame_ids=[0], half_pixel_shift=False),
                             depth_range=(0.05, 100.0))
    return transform(results)['gt_rays']


def test_cameras_match_generate_rays(hand_info, tmp_path):
    """Same frames as GenerateRays: camera centres, ray directions and pixels of LiDAR points."""
    cameras = sample_cameras(hand_info, _image_sizes(hand_info))
    points = _lidar_points_in_e0()
    rays = _run_generate_rays(hand_info, tmp_path, points)
    assert len(rays.depth) > 20
    origins = np.stack([cameras[c].centre for c in CAMERA_NAMES])
    np.testing.assert_allclose(rays.origins[0].numpy(), origins, atol=1e-4)
    # each ray is the ray of one point: match the rays to the points by direction
    cam_idx = rays.frame_cam[:, 1].numpy()
    seen = 0
    for k, cam in enumerate(CAMERA_NAMES):
        dirs = rays.directions.numpy()[cam_idx == k]
        if not len(dirs):
            continue
        to_points = points - origins[k]
        to_points /= np.linalg.norm(to_points, axis=1, keepdims=True)
        match = np.argmax(dirs @ to_points.T, axis=1)
        np.testing.assert_allclose(dirs, to_points[match], atol=1e-5)  # same 3-D geometry
        uv, depth = cameras[cam].project(points[match])
        np.testing.assert_array_equal(np.floor(uv).astype(np.int64),
                                      rays.pixels.numpy()[cam_idx == k])
        np.testing.assert_allclose(depth, rays.depth.numpy()[cam_idx == k], rtol=1e-5)
        seen += len(dirs)
    assert seen == len(rays.depth)


def test_voxels_of_lidar_points_cover_their_pixels(hand_info, tmp_path):
    """A volume built from the points is drawn where GenerateRays puts the points."""
    points = _lidar_points_in_e0()
    rays = _run_generate_rays(hand_info, tmp_path, points)
    vol = np.full(SHAPE, FREE_LABEL, np.uint8)
    size = (np.array(POINT_CLOUD_RANGE[3:]) - POINT_CLOUD_RANGE[:3]) / SHAPE
    index = np.floor((points - POINT_CLOUD_RANGE[:3]) / size).astype(int)
    vol[tuple(index.T)] = CAR
    faces = exposed_faces(vol, occupied_voxels(vol))
    cameras = sample_cameras(hand_info, _image_sizes(hand_info))
    cam_idx = rays.frame_cam[:, 1].numpy()
    hits = total = 0
    for k, cam in enumerate(CAMERA_NAMES):
        _, raster = render_faces(faces, cameras[cam])
        pixels = rays.pixels.numpy()[cam_idx == k]
        depth = rays.depth.numpy()[cam_idx == k]
        drawn = raster.depth[pixels[:, 1], pixels[:, 0]]
        hits += int(np.sum(np.isfinite(drawn) & (drawn <= depth + 1.5)))
        total += len(pixels)
    assert hits >= 0.95 * total  # the point's voxel (or one in front of it) is drawn there


def test_camera_overlay_image(hand_info):
    gt = np.full(SHAPE, FREE_LABEL, np.uint8)
    gt[:, :, 1] = 11  # road at z in [-0.2, 0.6]
    gt[24:27, 19:22, 2:5] = CAR  # 8 m ahead of the ego vehicle
    pred = gt.copy()
    pred[pred == CAR] = 10
    mask = np.ones(SHAPE, np.uint8)
    panels, shown = camera_overlays(hand_info, {'gt': gt, 'pred': pred}, mask, panel_width=48)
    assert shown == {CAR, 10, 11}
    front = panels['CAM_FRONT']
    assert front['image'].shape == front['gt'].shape == (27, 48, 3)
    assert (front['gt'] != front['image']).any() and (front['gt'] != front['pred']).any()
    # nothing of the car/truck block is behind the vehicle
    np.testing.assert_array_equal(panels['CAM_BACK']['gt'], panels['CAM_BACK']['pred'])
    image = camera_overlay_image(hand_info, pred, gt, mask, panel_width=48)
    assert image.ndim == 3 and image.shape[1] >= 3 * 48
    only_pred = camera_overlay_image(hand_info, pred, panel_width=48)
    assert only_pred.shape[0] < image.shape[0]


def test_camera_errors_name_the_sample_and_camera(hand_info):
    broken = dict(hand_info, cams={k: v for k, v in hand_info['cams'].items()
                                   if k != 'CAM_BACK'})
    with pytest.raises(KeyError, match='tok0 lacks camera CAM_BACK'):
        sample_cameras(broken, {})
    missing = dict(hand_info, cams=dict(hand_info['cams'], CAM_FRONT=dict(
        hand_info['cams']['CAM_FRONT'], data_path='/nonexistent/front.jpg')))
    with pytest.raises(FileNotFoundError, match='image of CAM_FRONT .*/nonexistent/front.jpg'):
        load_camera_image(missing, 'CAM_FRONT')
    with pytest.raises(KeyError, match='has no "cams"'):
        load_camera_image({'token': 't'}, 'CAM_FRONT')
