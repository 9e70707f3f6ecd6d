"""Per-frame input preparation (spec 2.3): frame split, sensor -> key ego, current -> adjacent."""
from __future__ import annotations

import math

import torch

from mmdet3d.models.view_transformers.temporal_geometry import (curr_to_adjacent_sensor,
                                                                prepare_temporal_inputs,
                                                                sensor_to_key_ego)
from mmdet3d.structures.camera_inputs import CameraInputs

B, F, N = 2, 3, 2


def _rotation(yaw: float, pitch: float) -> torch.Tensor:
    cz, sz, cy, sy = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    return rz @ ry


def _pose(yaw: float, pitch: float, t: list[float]) -> torch.Tensor:
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = _rotation(yaw, pitch)
    pose[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return pose


def _poses() -> tuple[torch.Tensor, torch.Tensor]:
    """(B, F, N, 4, 4) camera mounts and ego poses far from the global origin, float32 values
    held in float64 (so the references below see exactly the inputs the functions get)."""
    s2e = torch.stack([
        torch.stack([torch.stack([_pose(0.6 * n - 0.3 + 0.01 * b, 0.02, [1.5, 0.4 - n, 1.6])
                                  for n in range(N)]) for _ in range(F)]) for b in range(B)])
    e2g = torch.stack([
        torch.stack([torch.stack([_pose(0.3 - 0.03 * f + 0.001 * n, 0.004 * f,
                                        [612.4 - 1.1 * f + 0.04 * n, 1643.7 + 0.3 * f + b, 0.05])
                                  for n in range(N)]) for f in range(F)]) for b in range(B)])
    return s2e.float().double(), e2g.float().double()


def test_sensor_to_key_ego_maps_camera_points_to_key_ego():
    s2e, e2g = _poses()
    point_global = torch.tensor([630.0, 1650.0, 1.2, 1.0], dtype=torch.float64)
    s2k = sensor_to_key_ego(s2e.float(), e2g.float())
    assert s2k.dtype == torch.float32 and s2k.shape == (B, F, N, 4, 4)
    for b in range(B):
        point_key = torch.linalg.solve(e2g[b, 0, 0], point_global)
        for f in range(F):
            for n in range(N):
                point_cam = torch.linalg.solve(e2g[b, f, n] @ s2e[b, f, n], point_global)
                # float64 inside: a float32 composition of the ~1.6 km poses is off by ~1e-4
                torch.testing.assert_close(s2k[b, f, n].double() @ point_cam, point_key,
                                           rtol=0, atol=1e-5)
    # the key camera's own transform is its mount
    torch.testing.assert_close(s2k[:, 0, 0], s2e[:, 0, 0].float(), rtol=0, atol=1e-5)


def test_curr_to_adjacent_maps_camera_to_same_camera_one_frame_older():
    s2e, e2g = _poses()
    k2s = curr_to_adjacent_sensor(s2e.float(), e2g.float(), num_pairs=F - 1)
    assert k2s.shape == (B, F - 1, N, 4, 4) and k2s.dtype == torch.float32
    point_global = torch.tensor([625.0, 1640.0, 0.5, 1.0], dtype=torch.float64)
    for b in range(B):
        for f in range(F - 1):
            for n in range(N):
                curr = torch.linalg.solve(e2g[b, f, n] @ s2e[b, f, n], point_global)
                older = torch.linalg.solve(e2g[b, f + 1, n] @ s2e[b, f + 1, n], point_global)
                torch.testing.assert_close(k2s[b, f, n].double() @ curr, older, rtol=0,
                                           atol=1e-5)


def test_static_rig_has_identity_stereo_transform():
    s2e, e2g = _poses()
    e2g = e2g[:, :1].expand(-1, F, -1, -1, -1)  # the ego does not move
    k2s = curr_to_adjacent_sensor(s2e.float(), e2g.float(), num_pairs=F - 1)
    torch.testing.assert_close(k2s, torch.eye(4).expand_as(k2s), rtol=0, atol=1e-6)


def test_prepare_splits_camera_major_images_and_frame_major_transforms():
    imgs = torch.zeros(B, N * F, 3, 4, 6)
    for n in range(N):
        for f in range(F):
            imgs[:, n * F + f] = 10 * n + f  # camera-major
    s2e, e2g = _poses()
    intrins = torch.zeros(B, F * N, 3, 3)
    post_trans = torch.zeros(B, F * N, 3)
    for f in range(F):
        for n in range(N):
            intrins[:, f * N + n] = 10 * f + n  # frame-major
            post_trans[:, f * N + n] = 100 + 10 * f + n
    post_rots = intrins + 1
    bda = torch.eye(3).expand(B, 3, 3)
    cameras = CameraInputs(imgs=imgs, sensor2egos=s2e.float().flatten(1, 2),
                           ego2globals=e2g.float().flatten(1, 2), intrins=intrins,
                           post_rots=post_rots, post_trans=post_trans, bda=bda)
    out = prepare_temporal_inputs(cameras, num_frames=F)
    assert len(out.imgs) == F and out.bda is bda
    for f in range(F):
        assert out.imgs[f].shape == (B, N, 3, 4, 6)
        for n in range(N):
            assert (out.imgs[f][:, n] == 10 * n + f).all()
            assert (out.intrins[f][:, n] == 10 * f + n).all()
            assert (out.post_rots[f][:, n] == 10 * f + n + 1).all()
            assert (out.post_trans[f][:, n] == 100 + 10 * f + n).all()
        torch.testing.assert_close(out.ego2globals[f], e2g[:, f].float())
        torch.testing.assert_close(out.sensor2keyegos[f],
                                   sensor_to_key_ego(s2e.float(), e2g.float())[:, f])
    k2s = curr_to_adjacent_sensor(s2e.float(), e2g.float(), F - 1)
    torch.testing.assert_close(out.curr2adjsensors[0], k2s[:, 0])
    torch.testing.assert_close(out.curr2adjsensors[1], k2s[:, 1])
    assert out.curr2adjsensors[2] is None
    mono = prepare_temporal_inputs(cameras, num_frames=F, stereo=False)
    assert mono.curr2adjsensors == [None] * F
