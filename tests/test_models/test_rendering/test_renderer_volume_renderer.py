"""VolumeRenderer end to end: known volumes, variants, the given rays rendered in their order,
the class weights and render-loss modules, gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet3d.models.losses.class_weights import ClassBalancedLogWeights, class_balanced_log_weights
from mmdet3d.models.losses.render_losses import RenderDepthLoss, RenderSemanticLoss
from mmdet3d.models.rendering.ray_batching import flatten_rays, select_ray_indices
from mmdet3d.models.rendering.volume_renderer import RenderedRays, VolumeRenderer
from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import OCC3D_GEOMETRY, occ3d_geometry

PC_RANGE = (-8.0, -8.0, -2.0, 8.0, 8.0, 2.0)
GRID = (40, 40, 10)  # (X, Y, Z), 0.4 m voxels
GEOMETRY = occ3d_geometry(PC_RANGE, GRID)  # the original's lookup (align_corners), 7 frames
SIGMA, CAR, PED = 20.0, 4, 7
MID_JITTER = torch.full((2, 49), 0.5)  # the centres of the uniform proposal intervals
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


def _rays(frames, directions) -> LidarRays:
    """One sample's rays, T=7, N=1 origins at (0, 0.2, 0.2) (a voxel centre in y and z)."""
    num = len(frames)
    return LidarRays(
        origins=torch.tensor([0.0, 0.2, 0.2]).expand(7, 1, 3).contiguous(),
        directions=torch.tensor(directions, dtype=torch.float32),
        frame_cam=torch.stack([torch.tensor(frames), torch.zeros(num, dtype=torch.long)], dim=1),
        depth=torch.full((num,), 4.0), labels=torch.full((num,), CAR, dtype=torch.uint8))


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
    # proposal intervals jittered about their centres: over random jitter draws the depth
    # errs by up to 0.065 m (measured over 200 seeds), by 0.006 / 0.002 m here
    out = renderer(density, semantics, rays, jitter_rand=MID_JITTER)
    assert isinstance(out, RenderedRays) and len(out) == 2
    assert out.depth.shape == (2, 1) and out.semantics.shape == (2, 17)
    assert out.weights.shape == out.starts.shape == out.ends.shape == (2, 100)
    column = density[0, 5, 20, :, 0].numpy()
    depth, opacity = _reference_depth(column, align_corners, 0.05, 10.0)
    assert opacity > 0.999
    assert abs(out.depth[0, 0].item() - depth) < 0.01
    assert out.semantics[0].argmax().item() == PED
    # the second ray looks away from the slab, through empty space
    assert out.depth[1, 0].item() == 0.0 and out.semantics[1].abs().sum() == 0
    sem = out.semantics[0]
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
        return renderer(volume, semantics, rays)

    scaled, reference = render(density, SIGMA), render(slab, 1.0)
    torch.testing.assert_close(scaled.depth, reference.depth)
    torch.testing.assert_close(scaled.semantics, reference.semantics)
    depth, opacity = _reference_depth(column * SIGMA, False, 0.05, 10.0)
    assert opacity > 0.999 and abs(scaled.depth[0, 0].item() - depth) < 0.05
    # the lookups read the sigmoid density, before the scale
    distances = torch.tensor([[4.5]])
    torch.testing.assert_close(scaled.density_at(distances), torch.ones(1, 1))
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
                               jitter_rand=MID_JITTER[:1]).depth[0, 0].item())
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
    out = renderer(density, semantics, rays)
    assert 3.8 < out.depth[0, 0].item() < 4.2
    assert out.depth[1:].abs().max().item() == 0.0
    assert out.semantics[1:].abs().max().item() == 0.0
    # the lookups read the volumes each ray's frame reads: the car only in the current frame
    inside = torch.full((3, 1), 4.5)
    torch.testing.assert_close(out.density_at(inside)[:, 0], torch.tensor([SIGMA, 0.0, 0.0]))
    torch.testing.assert_close(out.semantics_at(inside)[:, 0, CAR],
                               torch.full((3,), 4.0))  # the semantics are not filtered


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
    out = renderer(density, semantics, rays, flow, jitter_rand=MID_JITTER)
    moved = np.zeros(GRID[0])
    moved[25:30] = SIGMA
    expected_moved, _ = _reference_depth(moved, False, 0.05, 10.0)
    assert abs(out.depth[1, 0].item() - expected_moved) < 0.01
    assert 3.8 < out.depth[0, 0].item() < 4.2
    assert out.semantics[1].argmax().item() == CAR
    # x = 2.6 m (voxel 26) is inside the car in the moved frame only
    torch.testing.assert_close(out.density_at(torch.full((2, 1), 2.6))[:, 0],
                               torch.tensor([0.0, SIGMA]), atol=1e-3, rtol=0)


def _two_samples() -> list[LidarRays]:
    """Sample 0: 3 rays at the slab; sample 1: 2 rays (its slab is the second volume's)."""
    first = _rays([3, 3, 3], [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [1.0, 0.0, 0.1]])
    second = _rays([3, 2], [[1.0, 0.05, 0.0], [1.0, 0.0, 0.0]])
    second.origins = second.origins + torch.tensor([1.0, 0.0, 0.0])
    for rays in (first, second):
        rays.directions = F.normalize(rays.directions, dim=1)
    return [first, second]


def test_renders_the_given_rays_in_their_order():
    """A selected subset of a flattened batch renders exactly as those rays' rows of the whole
    batch (each ray reads its own sample's volume; the same jitter per ray): what the old
    renderer's scatter-to-all-rays followed by the gather at the selected indices gave."""
    renderer = VolumeRenderer(GEOMETRY, render_range=(0.05, 10.0), render_impl='torch')
    density, semantics = _slab_scene(PED)
    far_density, far_semantics = _slab_scene(CAR, x_range=(35, 38))
    density, semantics = torch.cat([density, far_density]), torch.cat([semantics, far_semantics])
    rays = flatten_rays(_two_samples())
    assert rays.batch_idx.tolist() == [0, 0, 0, 1, 1]
    jitter = torch.rand(5, 49)
    whole = renderer(density, semantics, rays, jitter_rand=jitter)
    indices = select_ray_indices(5, 3, perm=torch.tensor([4, 0, 3, 2, 1]))
    assert indices.tolist() == [4, 0, 3]
    part = renderer(density, semantics, rays.select(indices), jitter_rand=jitter[indices])
    assert len(part) == 3
    for name in ('depth', 'semantics', 'weights', 'starts', 'ends'):
        assert torch.equal(getattr(part, name), getattr(whole, name)[indices]), name
    # each ray reads its own sample's slab: a pedestrian at 4 m, a car further away
    assert whole.semantics[:3].argmax(-1).tolist() == [PED] * 3
    assert whole.semantics[3:].argmax(-1).tolist() == [CAR] * 2
    assert (whole.depth[3:] > whole.depth[:3].max() + 0.5).all()
    # lookups at the same distances agree with the renderer's own lookups along each ray
    torch.testing.assert_close(part.density_at(part.starts),
                               whole.density_at(whole.starts)[indices])
    # a single sample's rays (no batch_idx) render as the same rays of a batch
    alone = renderer(density[:1], semantics[:1], _two_samples()[0],
                     jitter_rand=jitter[:3])
    assert torch.equal(alone.depth, whole.depth[:3])


def test_render_loss_modules_by_hand():
    """The class weights of the labels and the depth / class losses of the rendered rays (what
    ``OccFlowNet.ray_losses`` assembles): means over the rays of weight x error."""
    labels = torch.tensor([7, 0, 16], dtype=torch.uint8)
    depth = torch.tensor([4.0, 1.0, 3.0])
    pred_depth = torch.tensor([[5.0], [1.5], [2.0]])
    pred_semantics = torch.randn(3, 17)
    weights = ClassBalancedLogWeights()(labels)
    w = torch.tensor(SPEC_WEIGHTS)[[7, 0, 16]]
    torch.testing.assert_close(weights, w, atol=5e-5, rtol=0)
    loss_depth = RenderDepthLoss(loss_weight=0.05)(pred_depth, depth, weights)
    loss_semantics = RenderSemanticLoss(loss_weight=1.0)(pred_semantics, labels, weights)
    expected_depth = 0.05 * (w * torch.tensor([1.0, 0.25, 1.0])).mean()
    ce = F.cross_entropy(pred_semantics, labels.long(), reduction='none')
    torch.testing.assert_close(loss_depth, expected_depth, atol=1e-4, rtol=0)
    torch.testing.assert_close(loss_semantics, (w * ce).mean(), atol=1e-4, rtol=0)


def test_l1_depth_loss_by_hand():
    labels = torch.tensor([11, 4, 15])
    loss = RenderDepthLoss(loss_weight=0.5, loss_type='l1')(
        torch.tensor([[1.5], [0.0], [22.0]]), torch.tensor([1.0, 2.0, 30.0]),
        ClassBalancedLogWeights()(labels))
    w = class_balanced_log_weights()[[11, 4, 15]]
    torch.testing.assert_close(loss, 0.5 * (w * torch.tensor([0.5, 2.0, 8.0])).mean())
    with pytest.raises(ValueError, match='loss_type'):
        RenderDepthLoss(loss_type='huber')


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


def test_class_weights_module_option():
    counts = [0, 10, 10, 10, 40, 0, 0, 10, 10, 0, 10, 400, 100, 100, 100, 200, 100]
    own = MODELS.build(dict(type='ClassBalancedLogWeights', class_frequencies=counts))
    torch.testing.assert_close(own.class_weights, class_balanced_log_weights(counts))
    labels = torch.tensor([4, 11, 0], dtype=torch.uint8)
    assert torch.equal(own(labels), class_balanced_log_weights(counts)[[4, 11, 0]])
    default = ClassBalancedLogWeights()
    torch.testing.assert_close(default.class_weights, torch.tensor(SPEC_WEIGHTS), atol=5e-5,
                               rtol=0)
    assert len(default.state_dict()) == 0  # a non-persistent buffer, as the original's
    with pytest.raises(ValueError, match='17 counts'):
        ClassBalancedLogWeights(counts[:5])


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
    rays = flatten_rays([LidarRays(
        origins=torch.tensor([-1.9, 0.1, 0.05], dtype=torch.float64).expand(2, 1, 3),
        directions=F.normalize(torch.tensor([[1.0, 0.1, 0.05], [1.0, -0.2, 0.1],
                                             [1.0, 0.0, -0.1]], dtype=torch.float64), dim=1),
        frame_cam=torch.tensor([[0, 0], [1, 0], [0, 0]]), depth=torch.ones(3),
        labels=torch.zeros(3))])
    jitter = torch.rand(3, 5, dtype=torch.float64)

    def render(d, s):
        out = renderer(d, s, rays, flow, jitter_rand=jitter)
        return out.depth, out.semantics, out.density_at(out.ends), out.semantics_at(out.starts)

    assert torch.autograd.gradcheck(render, (density, semantics), fast_mode=True)


def test_builds_from_paper_configs():
    flow = MODELS.build(dict(type='VolumeRenderer', geometry=OCC3D_GEOMETRY, use_flow=True))
    filt = MODELS.build(dict(type='VolumeRenderer', geometry=OCC3D_GEOMETRY, temporal_filter=True,
                             ignore_classes=[0, 1, 3, 4, 5, 7, 9, 10]))
    assert flow.current_timestep == 3
    assert (flow.near, flow.far) == (0.05, 40.0)
    assert filt.frame_volumes.ignore_classes.tolist()[-1] == 10
    assert len(flow.state_dict()) == 0
    with pytest.raises(ValueError):
        VolumeRenderer(occ3d_geometry(), temporal_filter=True)
    with pytest.raises(ValueError):
        VolumeRenderer(occ3d_geometry(), render_impl='cuda')
    for loss_setting in ('depth_loss_weight', 'class_frequencies', 'rays_batch_size'):
        with pytest.raises(TypeError, match=loss_setting):  # the model's, not the renderer's
            VolumeRenderer(occ3d_geometry(), **{loss_setting: 1})


def test_nerfacc_backend_matches_torch_on_cpu():
    density, semantics = _slab_scene(PED)
    rays = _rays([3, 3], [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0]])
    rays.directions = F.normalize(rays.directions, dim=1)
    jitter = torch.rand(2, 99)
    outs = []
    for impl in ('torch', 'nerfacc'):
        renderer = VolumeRenderer(GEOMETRY, use_proposal=False, render_range=(0.05, 10.0),
                                  render_impl=impl)
        outs.append(renderer(density, semantics, rays, jitter_rand=jitter))
    for key in ('depth', 'semantics', 'weights'):
        torch.testing.assert_close(getattr(outs[0], key), getattr(outs[1], key), rtol=0, atol=0)
    proposal = VolumeRenderer(GEOMETRY, render_impl='nerfacc')
    with pytest.raises(RuntimeError):
        proposal(density, semantics, rays)
