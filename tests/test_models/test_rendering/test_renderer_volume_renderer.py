"""VolumeRenderer end to end: known volumes, variants, batching, losses, weights, gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.losses.class_weights import class_balanced_log_weights
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import OCC3D_GEOMETRY, occ3d_geometry

PC_RANGE = (-8.0, -8.0, -2.0, 8.0, 8.0, 2.0)
GRID = (40, 40, 10)  # (X, Y, Z), 0.4 m voxels
GEOMETRY = occ3d_geometry(PC_RANGE, GRID)  # the original's lookup (align_corners), 7 frames
SIGMA, CAR, PED = 20.0, 4, 7
SPEC_WEIGHTS = [1.3471, 1.2018, 1.7324, 1.1465, 0.7410, 1.4129, 1.6782, 1.1886, 1.5273, 1.1662,
                0.9601, 0.2417, 1.0154, 0.5005, 0.4612, 0.3496, 0.3295]


def _slab_scene(cls: int, x_range=(30, 35)):
    """Density SIGMA in voxels x_range (x in [4, 6) m for the default), all y and z."""
    size_x, size_y, size_z = GRID
    density = torch.zeros(1, size_z, size_y, size_x, 1)
    density[..., x_range[0]:x_range[1], :] = SIGMA
    semantics = torch.zeros(1, size_z, size_y, size_x, 17)
    semantics[..., x_range[0]:x_range[1], cls] = 4.0
    return density, semantics


def _rays(frames, directions) -> list[LidarRays]:
    """B=1, T=7, N=1 origins at (0, 0.2, 0.2) (a voxel centre in y and z)."""
    num = len(frames)
    return [LidarRays(
        origins=torch.tensor([0.0, 0.2, 0.2]).expand(7, 1, 3).contiguous(),
        directions=torch.tensor(directions, dtype=torch.float32),
        frame_cam=torch.stack([torch.tensor(frames), torch.zeros(num, dtype=torch.long)], dim=1),
        depth=torch.full((num,), 4.0), labels=torch.full((num,), CAR, dtype=torch.uint8))]


def _loss_rays(depth: list[float], labels: list[int]) -> LidarRays:
    """Rays for the losses alone (their geometry is not read)."""
    num = len(depth)
    return LidarRays(origins=torch.zeros(1, 1, 3), directions=torch.zeros(num, 3),
                     frame_cam=torch.zeros(num, 2, dtype=torch.long), depth=torch.tensor(depth),
                     labels=torch.tensor(labels, dtype=torch.uint8))


def _reference_depth(column: np.ndarray, align_corners: bool, near: float, far: float):
    """Fine 1-D quadrature along +x from x=0 through a density column (values per x voxel)."""
    t = np.linspace(near, far, 400001)
    x = t
    if align_corners:
        index = (x - PC_RANGE[0]) / (PC_RANGE[3] - PC_RANGE[0]) * (GRID[0] - 1)
    else:
        index = (x - PC_RANGE[0]) / 0.4 - 0.5
    sigma = np.interp(index, np.arange(GRID[0]), column)
    dt = t[1] - t[0]
    tau = np.concatenate([[0.0], np.cumsum((sigma[1:] + sigma[:-1]) / 2 * dt)])
    weights = sigma * np.exp(-tau)
    return float(np.trapz(weights * t, t)), float(1 - np.exp(-tau[-1]))


@pytest.mark.parametrize('align_corners', [True, False])
def test_slab_gives_expected_depth_and_class(align_corners):
    renderer = VolumeRenderer(occ3d_geometry(PC_RANGE, GRID, align_corners=align_corners),
                              render_range=(0.05, 10.0), render_impl='torch')
    density, semantics = _slab_scene(PED)
    rays = _rays([3, 3], [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    out = renderer(density, semantics, rays, torch.eye(3)[None])
    column = density[0, 5, 20, :, 0].numpy()
    depth, opacity = _reference_depth(column, align_corners, 0.05, 10.0)
    assert opacity > 0.999
    assert abs(out['depth'][0, 0].item() - depth) < 0.01
    assert out['semantics'][0].argmax().item() == PED
    assert out['depth'][1, 0].item() == 0.0 and out['semantics'][1].abs().sum() == 0
    sem = out['semantics'][0]
    assert sem[PED].item() < 4.0 and (sem.sum() - sem[PED]).abs().item() == 0.0


def test_density_scale_turns_a_saturated_sigmoid_into_an_opaque_surface():
    """Quirk 6: sigma = density_scale * density. A 2 m slab of saturated sigmoid density (1)
    stops only 86 % of a ray at scale 1; at scale 20 it renders exactly like a slab of sigma 20
    at scale 1: opaque, depth at its front face."""
    slab, semantics = _slab_scene(PED)
    density = slab / SIGMA  # the decoder's sigmoid output, saturated
    rays = _rays([3], [[1.0, 0.0, 0.0]])
    column = density[0, 5, 20, :, 0].numpy()
    assert _reference_depth(column, False, 0.05, 10.0)[1] < 0.87

    def render(volume, scale):
        renderer = VolumeRenderer(occ3d_geometry(PC_RANGE, GRID, align_corners=False),
                                  render_range=(0.05, 10.0), density_scale=scale,
                                  render_impl='torch')
        torch.manual_seed(0)
        return renderer(volume, semantics, rays, torch.eye(3)[None])

    scaled, reference = render(density, SIGMA), render(slab, 1.0)
    torch.testing.assert_close(scaled['depth'], reference['depth'])
    torch.testing.assert_close(scaled['semantics'], reference['semantics'])
    depth, opacity = _reference_depth(column * SIGMA, False, 0.05, 10.0)
    assert opacity > 0.999 and abs(scaled['depth'][0, 0].item() - depth) < 0.05
    with pytest.raises(ValueError, match='density_scale'):
        VolumeRenderer(occ3d_geometry(), density_scale=0.0)


def test_half_voxel_quirk_shifts_depth():
    density, semantics = _slab_scene(PED)
    rays = _rays([3], [[1.0, 0.0, 0.0]])
    depths = []
    for align in (True, False):
        renderer = VolumeRenderer(occ3d_geometry(PC_RANGE, GRID, align_corners=align),
                                  render_range=(0.05, 10.0), render_impl='torch')
        depths.append(renderer(density, semantics, rays,
                               torch.eye(3)[None])['depth'][0, 0].item())
    # The original maps x = 4 m to index 29.25 instead of 29.5: the surface moves ~0.1 m away.
    column = density[0, 5, 20, :, 0].numpy()
    shift = (_reference_depth(column, True, 0.05, 10.0)[0]
             - _reference_depth(column, False, 0.05, 10.0)[0])
    assert shift > 0.08
    assert abs((depths[0] - depths[1]) - shift) < 0.03


def test_temporal_filter_hides_dynamic_voxels_in_other_frames():
    renderer = VolumeRenderer(GEOMETRY, render_range=(0.05, 10.0), temporal_filter=True,
                              ignore_classes=[0, 1, 3, 4, 5, 7, 9, 10], render_impl='torch')
    density, semantics = _slab_scene(CAR)
    rays = _rays([3, 0, 6], [[1.0, 0.0, 0.0]] * 3)
    out = renderer(density, semantics, rays, torch.eye(3)[None])
    assert 3.8 < out['depth'][0, 0].item() < 4.2
    assert out['depth'][1:].abs().max().item() == 0.0
    assert out['semantics'][1:].abs().max().item() == 0.0


@pytest.mark.parametrize('frame_ids,moved,current', [((-3, -2, -1, 0, 1, 2, 3), 1, 3),
                                                      ((-1, 0), 0, 1)])
def test_flow_moves_object_for_its_frame_only(frame_ids, moved, current):
    geometry = occ3d_geometry(PC_RANGE, GRID, align_corners=False, render_frame_ids=frame_ids)
    renderer = VolumeRenderer(geometry, render_range=(0.05, 10.0), use_flow=True,
                              render_impl='torch')
    density, semantics = _slab_scene(CAR)
    rows = [[5, 20, x, 5, 20, x - 5, 0, 0, 0, CAR, moved] for x in range(30, 35)]
    flow = [torch.tensor(rows, dtype=torch.uint8)]
    rays = _rays([current, moved], [[1.0, 0.0, 0.0]] * 2)
    out = renderer(density, semantics, rays, torch.eye(3)[None],
                   flow)
    moved = np.zeros(GRID[0])
    moved[25:30] = SIGMA
    expected_moved, _ = _reference_depth(moved, False, 0.05, 10.0)
    assert abs(out['depth'][1, 0].item() - expected_moved) < 0.01
    assert 3.8 < out['depth'][0, 0].item() < 4.2
    assert out['semantics'][1].argmax().item() == CAR


def test_ray_batch_uses_first_indices_of_permutation():
    renderer = VolumeRenderer(GEOMETRY, rays_batch_size=2, render_range=(0.05, 10.0),
                              render_impl='torch')
    density, semantics = _slab_scene(PED)
    rays = _rays([3, 3, 3], [[1.0, 0.0, 0.0]] * 3)
    perm = torch.tensor([2, 0, 1])
    out = renderer(density, semantics, rays, torch.eye(3)[None],
                   ray_perm=perm)
    assert out['indices'].tolist() == [2, 0]
    assert out['depth'][1].item() == 0.0 and out['depth'][[0, 2]].min().item() > 3.0
    drawn = renderer(density, semantics, rays, torch.eye(3)[None])
    assert len(drawn['indices']) == 2 and len(set(drawn['indices'].tolist())) == 2


def test_losses_by_hand():
    renderer = VolumeRenderer(GEOMETRY, render_impl='torch')
    rays = [_loss_rays([1.0, 2.0, 3.0], [0, 11, 16]), _loss_rays([4.0], [7])]
    preds = dict(depth=torch.tensor([[1.5], [0.0], [2.0], [5.0]]),
                 semantics=torch.randn(4, 17), indices=torch.tensor([3, 0, 2]))
    losses = renderer.loss(preds, rays)
    w = torch.tensor(SPEC_WEIGHTS)[[7, 0, 16]]
    expected_depth = 0.05 * (w * torch.tensor([1.0, 0.25, 1.0])).mean()
    ce = F.cross_entropy(preds['semantics'][[3, 0, 2]], torch.tensor([7, 0, 16]),
                         reduction='none')
    torch.testing.assert_close(losses['loss_render_depth'], expected_depth, atol=1e-4, rtol=0)
    torch.testing.assert_close(losses['loss_render_semantics'], (w * ce).mean(), atol=1e-4,
                               rtol=0)


def test_l1_depth_loss_by_hand():
    renderer = VolumeRenderer(GEOMETRY, render_impl='torch', depth_loss_weight=0.5,
                              depth_loss_type='l1')
    rays = [_loss_rays([1.0, 2.0, 30.0], [11, 4, 15])]
    preds = dict(depth=torch.tensor([[1.5], [0.0], [22.0]]), semantics=torch.zeros(3, 17),
                 indices=torch.tensor([0, 1, 2]))
    loss = renderer.loss(preds, rays)['loss_render_depth']
    w = class_balanced_log_weights()[[11, 4, 15]]
    torch.testing.assert_close(loss, 0.5 * (w * torch.tensor([0.5, 2.0, 8.0])).mean())
    with pytest.raises(ValueError, match='loss_type'):
        VolumeRenderer(GEOMETRY, depth_loss_type='huber')


def test_class_weights_equal_spec_table():
    weights = class_balanced_log_weights()
    torch.testing.assert_close(weights, torch.tensor(SPEC_WEIGHTS), atol=5e-5, rtol=0)
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0))


def test_class_weights_of_own_counts_with_absent_classes():
    # counts 0, 1, 3, 0 of 4 total: log(4/1) and log(4/3) rescaled to mean 1 over the two
    # classes that occur; the absent ones take the largest of those
    weights = class_balanced_log_weights([0, 1, 3, 0])
    present = torch.tensor([math.log(4.0), math.log(4.0 / 3.0)], dtype=torch.float64)
    present = present * 2 / present.sum()
    expected = torch.stack([present[0], present[0], present[1], present[0]]).float()
    torch.testing.assert_close(weights, expected)
    for bad in ([1, -1, 2], [0, 5, 0]):
        with pytest.raises(ValueError, match='class frequencies'):
            class_balanced_log_weights(bad)


def test_renderer_class_frequencies_option():
    counts = [0, 10, 10, 10, 40, 0, 0, 10, 10, 0, 10, 400, 100, 100, 100, 200, 100]
    renderer = VolumeRenderer(GEOMETRY, class_frequencies=counts)
    torch.testing.assert_close(renderer.losses.class_weights, class_balanced_log_weights(counts))
    default = VolumeRenderer(GEOMETRY)
    torch.testing.assert_close(default.losses.class_weights, torch.tensor(SPEC_WEIGHTS), atol=5e-5,
                               rtol=0)
    unweighted = VolumeRenderer(GEOMETRY, class_balanced_loss=False, class_frequencies=counts)
    torch.testing.assert_close(unweighted.losses.class_weights, torch.ones(17))
    with pytest.raises(ValueError, match='17 counts'):
        VolumeRenderer(GEOMETRY, class_frequencies=counts[:5])


@pytest.mark.parametrize('variant', ['flow', '2d'])
def test_render_gradcheck_float64(variant):
    grid = (4, 3, 2)
    pc_range = (-2.0, -1.5, -1.0, 2.0, 1.5, 1.0)
    kwargs = dict(use_flow=True) if variant == 'flow' else dict(
        temporal_filter=True, ignore_classes=[1])
    renderer = VolumeRenderer(occ3d_geometry(pc_range, grid, render_frame_ids=[-1, 0]),
                              render_range=(0.05, 4.0), samples_per_ray=6, use_proposal=False,
                              render_impl='torch', **kwargs)
    density = torch.rand(1, 2, 3, 4, 1, dtype=torch.float64, requires_grad=True)
    semantics = torch.randn(1, 2, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    src_cls = semantics[0, 0, 1, 1].argmax().item()
    flow = [torch.tensor([[0, 1, 1, 0, 1, 2, 0, 0, 0, src_cls, 0]], dtype=torch.uint8)]
    rays = [LidarRays(
        origins=torch.tensor([-1.9, 0.1, 0.05], dtype=torch.float64).expand(2, 1, 3),
        directions=F.normalize(torch.tensor([[1.0, 0.1, 0.05], [1.0, -0.2, 0.1],
                                             [1.0, 0.0, -0.1]], dtype=torch.float64), dim=1),
        frame_cam=torch.tensor([[0, 0], [1, 0], [0, 0]]), depth=torch.ones(3),
        labels=torch.zeros(3))]
    jitter = torch.rand(3, 5, dtype=torch.float64)

    def render(d, s):
        out = renderer(d, s, rays, torch.eye(3)[None].double(), flow,
                       jitter_rand=jitter, ray_perm=torch.arange(3))
        return out['depth'], out['semantics']

    assert torch.autograd.gradcheck(render, (density, semantics), fast_mode=True)


def test_builds_from_paper_configs():
    flow = MODELS.build(dict(type='VolumeRenderer', geometry=OCC3D_GEOMETRY, use_flow=True))
    filt = MODELS.build(dict(type='VolumeRenderer', geometry=OCC3D_GEOMETRY, temporal_filter=True,
                             ignore_classes=[0, 1, 3, 4, 5, 7, 9, 10]))
    assert flow.current_timestep == 3 and flow.rays_batch_size == 32768
    assert (flow.near, flow.far) == (0.05, 40.0)
    assert filt.frame_volumes.ignore_classes.tolist()[-1] == 10
    assert len(flow.state_dict()) == 0
    with pytest.raises(ValueError):
        VolumeRenderer(occ3d_geometry(), temporal_filter=True)
    with pytest.raises(ValueError):
        VolumeRenderer(occ3d_geometry(), render_impl='cuda')


def test_nerfacc_backend_matches_torch_on_cpu():
    density, semantics = _slab_scene(PED)
    rays = _rays([3, 3], [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0]])
    rays[0].directions = F.normalize(rays[0].directions, dim=1)
    jitter = torch.rand(2, 99)
    outs = []
    for impl in ('torch', 'nerfacc'):
        renderer = VolumeRenderer(GEOMETRY, use_proposal=False, render_range=(0.05, 10.0),
                                  render_impl=impl)
        outs.append(renderer(density, semantics, rays,
                             torch.eye(3)[None], jitter_rand=jitter, ray_perm=torch.arange(2)))
    for key in ('depth', 'semantics'):
        torch.testing.assert_close(outs[0][key], outs[1][key], rtol=0, atol=0)
    proposal = VolumeRenderer(GEOMETRY, render_impl='nerfacc')
    with pytest.raises(RuntimeError):
        proposal(density, semantics, rays, torch.eye(3)[None])
