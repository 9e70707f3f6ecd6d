"""Renderer functions against the original implementation's golden vectors (README_functions.md).

Every comparison also reports its worst absolute error (``-s`` shows them).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdet3d.datasets.transforms.bev_aug import flip_flow_rows
from mmdet3d.models.losses.class_weights import class_balanced_log_weights
from mmdet3d.models.rendering.flow_warping import apply_flow_clipped, create_static_density
from mmdet3d.models.rendering.grid_sampling import trilinear_lookup
from mmdet3d.models.rendering.ray_samplers import sample_along_rays, uniform_intervals
from mmdet3d.models.rendering.ray_batching import flatten_rays
from mmdet3d.models.rendering.volume_renderer import VolumeRenderer
from mmdet3d.models.rendering.volume_rendering import weights_from_density
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.testing.geometry import occ3d_geometry
from mmdet3d.testing.tiny_model import build_tiny_model

PC_RANGE = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
IGNORE_2D = [0, 1, 3, 4, 5, 7, 9, 10]


def _load(golden_dir, name: str):
    data = np.load(golden_dir / f'{name}.npz')
    return lambda key: torch.from_numpy(data[key])


def _golden_rays(idx: torch.Tensor, depth: torch.Tensor, labels: torch.Tensor,
                 origins: torch.Tensor | None = None,
                 directions: torch.Tensor | None = None) -> LidarRays:
    """One sample's recorded rays; the loss-only cases record no geometry (zeros stand in)."""
    return LidarRays(origins=torch.zeros(1, 1, 3) if origins is None else origins,
                     directions=torch.zeros(len(depth), 3) if directions is None else directions,
                     frame_cam=idx, depth=depth, labels=labels)


def _bev_flipped(flows: list[torch.Tensor], bda: torch.Tensor,
                 grid: tuple[int, int, int]) -> list[torch.Tensor]:
    """The recorded (unflipped) rows of each sample flipped by its bda's x/y flips, as
    ``LoadAnnotationsBEVDepth`` gives them to the model (the original flipped them inside)."""
    return [torch.from_numpy(flip_flow_rows(rows.numpy(), bool(m[0, 0] == -1),
                                            bool(m[1, 1] == -1), grid))
            for rows, m in zip(flows, bda)]


def _grid(density: torch.Tensor) -> tuple[int, int, int]:
    """(X, Y, Z) of a (B, Z, Y, X, C) volume."""
    return density.shape[3], density.shape[2], density.shape[1]


@pytest.fixture(scope='module')
def paper_losses():
    """The tiny golden model: the paper model's ray selection (32768 rays) and render losses
    (class-balanced log weights, MSE depth 0.05, CE 1.0), as its config inherits them."""
    return build_tiny_model()


def _close(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float = 0.0):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    err = (got - expected).abs().max().item() if got.numel() else 0.0
    print(f'[golden] {name}: max abs err {err:.3g}')
    if rtol:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)
    else:
        assert err <= atol, f'{name}: {err} > {atol}'


@pytest.mark.parametrize('case', ['case0', 'case1', 'case2', 'case3'])
def test_apply_flow_clipped(golden_dir, case):
    g = _load(golden_dir, 'fn_apply_flow_clipped')
    flows = [g(f'{case}_in_voxel_flow_b{b}') for b in range(2)]
    num_frames = len(g('render_frame_ids'))
    flows = _bev_flipped(flows, g(f'{case}_in_bda'), _grid(g(f'{case}_in_density')))
    density, semantics = apply_flow_clipped(g(f'{case}_in_density'), g(f'{case}_in_semantics'),
                                            flows, num_frames)
    expected_d, expected_s = g(f'{case}_out_density'), g(f'{case}_out_semantics')
    _close(f'flow {case} density', density, expected_d, atol=1e-6)
    _close(f'flow {case} semantics', semantics, expected_s, atol=1e-5)
    unchanged = expected_d == g(f'{case}_in_density')[:, None]  # untouched voxels: exact
    assert torch.equal(density[unchanged], expected_d[unchanged])


@pytest.mark.parametrize('case', ['values_b2', 'values_b1', 'tf', 'flow_c1', 'flow_c4'])
def test_interpolate(golden_dir, case):
    g = _load(golden_dir, 'fn_interpolate')
    values, indices = g(f'{case}_in_values'), g(f'{case}_in_indices')
    batch_idx, frame_idx = indices[:, 0], indices[:, 1]
    if case.startswith('values'):
        volumes, slots = values, batch_idx
    elif case == 'tf':
        current = int(g('current_timestep'))
        volumes = values.flatten(0, 1)  # (B, 2, Z, Y, X, C) -> (B*2, Z, Y, X, C)
        slots = 2 * batch_idx + (frame_idx != current).long()
    else:
        volumes = values.flatten(0, 1)  # (B, T, Z, Y, X, C) -> (B*T, Z, Y, X, C)
        slots = batch_idx * values.shape[1] + frame_idx
    out = trilinear_lookup(volumes, slots, g(f'{case}_in_samples'), tuple(g('pc_range').tolist()))
    _close(f'interpolate {case}', out, g(f'{case}_out'), atol=1e-5)


def test_static_density_and_class_weights(golden_dir):
    g = _load(golden_dir, 'fn_static_and_losses')
    _close('class_weight', class_balanced_log_weights(), g('class_weight'), atol=1e-6)
    for case in ('static0', 'static1'):
        density = g(f'{case}_in_density')
        static = create_static_density(density, g(f'{case}_in_semantics'), g('ignore_classes'))
        assert torch.equal(static, g(f'{case}_out_static_density'))
        assert torch.equal(torch.stack([density, static], dim=1), g(f'{case}_out_stacked'))


@pytest.mark.parametrize('case', ['loss0', 'loss1', 'loss2'])
def test_render_losses(golden_dir, case, paper_losses):
    """The original's losses of its rendered rays: the model's losses of the rays at the
    recorded indices (its predictions there; zero elsewhere in the original's output)."""
    g = _load(golden_dir, 'fn_static_and_losses')
    rays = flatten_rays([_golden_rays(g(f'{case}_in_ray_idx_b{b}'),
                                      g(f'{case}_in_ray_depth_b{b}'),
                                      g(f'{case}_in_ray_label_b{b}')) for b in range(2)])
    indices = g(f'{case}_in_indices')
    losses = paper_losses.ray_losses(g(f'{case}_in_pred_depth')[indices],
                                     g(f'{case}_in_pred_semantics')[indices],
                                     rays.select(indices))
    for key in ('loss_render_depth', 'loss_render_semantics'):
        _close(f'{case} {key}', losses[key], g(f'{case}_out_{key}'), atol=0, rtol=1e-5)


@pytest.mark.parametrize('case', ['uniform0', 'uniform1', 'uniform2'])
def test_uniform_sampler(golden_dir, case):
    g = _load(golden_dir, 'fn_sampling')
    rand = g(f'{case}_in_jitter_rand')
    edges, centres = uniform_intervals(rand.shape[0], int(g(f'{case}_in_num_samples')),
                                       float(g('near')), float(g('far')), rand)
    _close(f'{case} starts', edges[:, :-1], g(f'{case}_out_starts'), atol=1e-5)
    _close(f'{case} ends', edges[:, 1:], g(f'{case}_out_ends'), atol=1e-5)
    _close(f'{case} centers', centres, g(f'{case}_out_centers'), atol=1e-5)


@pytest.mark.parametrize('case', ['gen_flow', 'gen_2d'])
def test_generate_samples(golden_dir, case):
    g = _load(golden_dir, 'fn_sampling')
    density, indices = g(f'{case}_in_density'), g(f'{case}_in_ray_indices')
    origins, directions = g(f'{case}_in_origins'), g(f'{case}_in_directions')
    volumes = density.flatten(0, 1)  # (B, K, Z, Y, X, 1) -> (B*K, Z, Y, X, 1)
    if case == 'gen_flow':
        slots = indices[:, 0] * density.shape[1] + indices[:, 1]
    else:
        slots = 2 * indices[:, 0] + (indices[:, 1] != 3).long()

    def density_at(t):
        points = origins[:, None] + t[..., None] * directions[:, None]  # (R, S, 3)
        return trilinear_lookup(volumes, slots, points, PC_RANGE)[..., 0]

    rand = g(f'{case}_in_jitter_rand')
    near, far = float(g('near')), float(g('far'))
    edges, centres = uniform_intervals(len(rand), 50, near, far, rand)
    _close(f'{case} mid_prop_starts', edges[:, :-1], g(f'{case}_mid_prop_starts'), atol=1e-5)
    _close(f'{case} mid_prop_centers', centres, g(f'{case}_mid_prop_centers'), atol=1e-5)
    sigma = density_at(centres)
    _close(f'{case} mid_prop_sigma', sigma, g(f'{case}_mid_prop_sigma'), atol=1e-5)
    _, trans, _ = weights_from_density(edges[:, :-1], edges[:, 1:], sigma, impl='torch')
    _close(f'{case} mid_prop_transmittance', trans, g(f'{case}_mid_prop_transmittance'), atol=1e-5)
    cdfs = 1.0 - torch.cat([trans, torch.zeros_like(trans[:, :1])], dim=1)
    _close(f'{case} mid_cdfs', cdfs, g(f'{case}_mid_cdfs'), atol=1e-5)
    starts, ends, samples = sample_along_rays(density_at, len(rand), near, far, 100, 50, True,
                                              rand, 'torch')
    for name, got in (('starts', starts), ('ends', ends), ('centers', samples)):
        expected = g(f'{case}_out_{name}')
        err = (got - expected).abs()
        print(f'[golden] {case} {name}: max abs err {err.max().item():.3g}')
        assert (err > 1e-4).float().mean().item() < 0.005


@pytest.mark.parametrize('variant', ['flow', '2d'])
def test_renderer_forward(golden_dir, variant, paper_losses):
    """The original's renderer forward and losses: the model selects the rays with the recorded
    permutation, the renderer renders them (the original's output at those rays; it was zero at
    the others) and the model's losses of them."""
    g = _load(golden_dir, 'fn_renderer_forward')
    density, semantics = g('in_density'), g('in_semantics')
    grid = (density.shape[3], density.shape[2], density.shape[1])  # (B, Z, Y, X, 1) -> X, Y, Z
    kwargs = dict(use_flow=True) if variant == 'flow' else dict(
        temporal_filter=True, ignore_classes=IGNORE_2D)
    renderer = VolumeRenderer(occ3d_geometry(grid_shape=grid), render_impl='torch', **kwargs)
    rays = [_golden_rays(g(f'in_ray_idx_b{b}'), g(f'in_ray_depth_b{b}'),
                         g(f'in_ray_label_b{b}'), g('in_origins')[b], g(f'in_directions_b{b}'))
            for b in range(2)]
    flows = [g(f'in_voxel_flow_b{b}') for b in range(2)] if variant == 'flow' else None
    batch = paper_losses.select_rays(rays, perm=g('in_perm'))
    indices = g(f'{variant}_out_indices')
    assert len(batch) == len(indices)
    assert torch.equal(batch.depth, flatten_rays(rays).depth[indices])
    if flows is not None:
        flows = _bev_flipped(flows, g('in_bda'), grid)
    out = renderer(density, semantics, batch, flows, jitter_rand=g('in_jitter_rand'))
    expected_depth, expected_semantics = g(f'{variant}_out_depth'), g(f'{variant}_out_semantics')
    not_rendered = torch.ones(len(expected_depth), dtype=torch.bool)
    not_rendered[indices] = False
    assert not expected_depth[not_rendered].any() and not expected_semantics[not_rendered].any()
    _close(f'forward {variant} depth', out.depth, expected_depth[indices], atol=1e-3)
    _close(f'forward {variant} semantics', out.semantics, expected_semantics[indices], atol=1e-4)
    losses = paper_losses.render_losses(out, batch)
    assert set(losses) == {'loss_render_depth', 'loss_render_semantics'}
    for key in ('loss_render_depth', 'loss_render_semantics'):
        _close(f'forward {variant} {key}', losses[key], g(f'{variant}_out_{key}'), atol=0,
               rtol=1e-4)
