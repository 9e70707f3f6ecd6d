"""Frustum construction, camera -> key-ego geometry and voxel assignment of the lift step."""
from __future__ import annotations

import math

import pytest
import torch

from mmdet3d.models.view_transformers.frustum_geometry import (create_frustum, depth_bin_values,
                                                               frustum_to_ego, grid_infos)
from mmdet3d.models.view_transformers.lss_view_transformer import LSSViewTransformerBEVStereo
from mmdet3d.testing.geometry import occ3d_geometry

# camera axes (x right, y down, z forward) -> ego axes for a camera looking along ego +x
CAM_TO_EGO_FORWARD = torch.tensor([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])


def test_frustum_matches_paper_layout():
    """Spec 2.7.1: (88, 32, 88, 3) at stride 16 and (88, 128, 352, 3) at stride 4."""
    frustum = create_frustum([1.0, 45.0, 0.5], (512, 1408), 16)
    assert frustum.shape == (88, 32, 88, 3)
    torch.testing.assert_close(frustum[0, 0, -1], torch.tensor([1407., 0., 1.]))
    torch.testing.assert_close(frustum[87, 31, 0], torch.tensor([0., 511., 44.5]))
    torch.testing.assert_close(frustum[5, 3, 1], torch.tensor([1407 / 87, 3 * 511 / 31, 3.5]))
    stereo = create_frustum([1.0, 45.0, 0.5], (512, 1408), 4)
    assert stereo.shape == (88, 128, 352, 3)
    torch.testing.assert_close(stereo[-1, -1, -1], torch.tensor([1407., 511., 44.5]))


def test_sid_bins_are_geometric():
    depth = depth_bin_values([1.0, 45.0, 0.5], sid=True)
    assert depth.shape == (88,)
    torch.testing.assert_close(depth[[0, -1]], torch.tensor([1.0, 44.0]))
    ratios = depth[1:] / depth[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 44.0 ** (1 / 87)))


def test_grid_infos():
    lower, interval, size = grid_infos(dict(x=[-40, 40, 0.4], y=[-40, 40, 0.4], z=[-1, 5.4, 0.4]))
    torch.testing.assert_close(lower, torch.tensor([-40., -40., -1.]))
    torch.testing.assert_close(interval, torch.tensor([0.4, 0.4, 0.4]))
    torch.testing.assert_close(size, torch.tensor([200., 200., 16.]))


def _camera(flip_x: bool) -> dict[str, torch.Tensor]:
    """A forward camera 1 m ahead of the ego origin at 1.5 m height; the image was resized by 0.5
    and shifted by (-10, -3), so augmented pixel (87.5, 21) is original pixel (195, 48) = (cx, cy).
    """
    sensor2ego = torch.eye(4)
    sensor2ego[:3, :3] = CAM_TO_EGO_FORWARD
    sensor2ego[:3, 3] = torch.tensor([1.0, 0.0, 1.5])
    intrins = torch.tensor([[300., 0., 195.], [0., 300., 48.], [0., 0., 1.]])
    post_rots = torch.diag(torch.tensor([0.5, 0.5, 1.0]))
    post_trans = torch.tensor([-10., -3., 0.])
    bda = torch.diag(torch.tensor([-1. if flip_x else 1., 1., 1.]))
    return dict(sensor2ego=sensor2ego[None, None], intrins=intrins[None, None],
                post_rots=post_rots[None, None], post_trans=post_trans[None, None],
                bda=bda[None])


@pytest.mark.parametrize('flip_x', [False, True])
def test_point_in_front_of_camera_lands_in_expected_voxel(flip_x: bool):
    """Frustum point (u=87.5, v=21, d=9) is on the optical axis: ego (10, 0, 1.5), or (-10, 0, 1.5)
    after the x-flip; on the 3.2 m x 3.2 m x 0.8 m grid that is voxel (x, y, z) = (15 or 9, 12, 3).
    """
    vt = LSSViewTransformerBEVStereo(
        geometry=occ3d_geometry(grid_shape=(25, 25, 8), depth_bins=[1.0, 45.0, 4.0]),
        input_size=(64, 176), in_channels=8, out_channels=3, collapse_z=False,
        bev_pool_impl='torch')
    torch.testing.assert_close(vt.frustum[2, 1, 5], torch.tensor([87.5, 21.0, 9.0]))
    cam = _camera(flip_x)
    coor = vt.get_lidar_coor(cam['sensor2ego'], cam['intrins'], cam['post_rots'],
                             cam['post_trans'], cam['bda'])
    assert coor.shape == (1, 1, 11, 4, 11, 3)
    expected = torch.tensor([-10.0 if flip_x else 10.0, 0.0, 1.5])
    torch.testing.assert_close(coor[0, 0, 2, 1, 5], expected, rtol=0, atol=1e-5)
    # every depth of that pixel lies on the ego x axis at d + 1 m
    depths = torch.arange(1.0, 45.0, 4.0)
    torch.testing.assert_close(coor[0, 0, :, 1, 5, 0].abs(), depths + 1.0, rtol=0, atol=1e-4)

    # lift-splat: all mass in depth bin 2, a feature only at pixel (1, 5) -> exactly one voxel
    depth = torch.zeros(1, 1, 11, 4, 11)
    depth[:, :, 2] = 1.0
    feat = torch.zeros(1, 1, 3, 4, 11)
    feat[0, 0, :, 1, 5] = torch.tensor([1.0, 2.0, 3.0])
    bev_feat = vt.voxel_pooling(coor, depth, feat)
    assert bev_feat.shape == (1, 3, 8, 25, 25)  # (B, C, Z, Y, X)
    expected_bev = torch.zeros_like(bev_feat)
    expected_bev[0, :, 3, 12, 9 if flip_x else 15] = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(bev_feat, expected_bev)


def test_off_axis_pixel_matches_pinhole_model():
    """An arbitrary augmented pixel and depth: undo the augmentation, back-project with K."""
    cam = _camera(flip_x=False)
    frustum = torch.tensor([[[[30.0, 50.0, 7.0]]]])  # (D=1, h=1, w=1, 3)
    coor = frustum_to_ego(frustum, cam['sensor2ego'], cam['intrins'], cam['post_rots'],
                          cam['post_trans'], cam['bda'])[0, 0, 0, 0, 0]
    u, v = (30.0 + 10.0) / 0.5, (50.0 + 3.0) / 0.5  # original pixel
    x_cam, y_cam = (u - 195.0) / 300.0 * 7.0, (v - 48.0) / 300.0 * 7.0
    # camera (x right, y down, z forward) -> ego (forward, left, up), plus the mount offset
    expected = torch.tensor([1.0 + 7.0, -x_cam, 1.5 - y_cam])
    torch.testing.assert_close(coor, expected, rtol=0, atol=1e-5)
    assert math.isclose(float(coor[1]), -(80.0 - 195.0) / 300.0 * 7.0, rel_tol=1e-5)
