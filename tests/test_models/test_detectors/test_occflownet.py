"""OccFlowNet detector: losses, prediction, gradient flow and BN of the frame loop, training steps,
renderer variants and mixed precision (spec 2.3, 2.4, 2.10, 2.11).

Built from the tiny golden config (2 cameras, 64x192 input, 32x32x8 grid) on the synthetic world
of ``mmdet3d.testing.occ_inputs``. Every expected value is recomputed here from the spec, from
raw outputs captured with hooks.

Mixed precision: ``tools/train.py --amp`` sets ``optim_wrapper.type='AmpOptimWrapper'`` with a
dynamic loss scale (``mmdet3d/engine/runner_setup.py``). Its ``optim_context`` runs the data
preprocessor and ``forward(mode='loss')`` inside ``mmengine.runner.amp.autocast(dtype=...)``,
i.e. ``torch.autocast`` on the model's device (float16 by default on CUDA; bfloat16 is the only
CPU dtype). mmengine's ``AmpOptimWrapper`` refuses to run without a GPU, so on CPU the model side
is tested directly under that autocast context. (At the paper grid the CPU bf16 backward aborts
inside oneDNN; see ``tools/benchmarks/bench_model.py``.)
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast
from torch import nn

from mmdet3d.models.losses.distortion_loss import ray_distortion
from mmdet3d.models.rendering.ray_batching import flatten_rays
from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_geometry import OccGeometry
from mmdet3d.structures.voxel_grids import swap_x_z
from mmdet3d.testing.occ_inputs import (CAR, CAR_CENTRE, CAR_HALF, FREE, GROUND, Geometry,
                                        make_batch, sensor2ego, take_sample, to_collated,
                                        with_gt)
from mmdet3d.testing.tiny_model import build_tiny_model as build_model
from mmdet3d.testing.tiny_model import tiny_model_config

REPO_ROOT = Path(__file__).resolve().parents[3]
DYNAMIC_CLASSES = (0, 1, 3, 4, 5, 7, 9, 10)  # ignore_classes of the _2d config
LOSS_3D = dict(loss_occ_density=dict(type='OccDensityBCELoss'),
               loss_occ_semantics=dict(type='OccSemanticCELoss'))
PER_FRAME_MODULES = ('img_neck', 'img_view_transformer', 'pre_process_net')
ENCODER_MODULES = ('img_bev_encoder_backbone', 'img_bev_encoder_neck')


@pytest.fixture(scope='module')
def batch() -> dict:
    """Batch of 2 (second sample BEV-flipped along x) with voxel labels."""
    return make_batch(batch_size=2, with_gt_occ=True)


@pytest.fixture(scope='module')
def single(batch) -> dict:
    return take_sample(batch, 0)


def gt_labels(batch: dict) -> torch.Tensor:
    """(B, X, Y, Z) uint8 Occ3D semantics of a batch's data samples."""
    return torch.stack([torch.from_numpy(s.gt_occ['semantics']) for s in batch['data_samples']])


def gt_depths(batch: dict) -> torch.Tensor:
    """(B, N, H, W) depth GT of a batch's data samples."""
    return torch.stack([s.gt_depth for s in batch['data_samples']])


def gt_rays(batch: dict) -> list[LidarRays]:
    return [s.gt_rays for s in batch['data_samples']]


def gt_flows(batch: dict) -> list[torch.Tensor]:
    return [s.gt_flow for s in batch['data_samples']]


class Recorder:
    """Forward hooks that keep the outputs of named sub-modules, one entry per call."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        self.calls: dict[str, list] = {name: [] for name in names}
        self.handles = [model.get_submodule(name).register_forward_hook(self._keep(name))
                        for name in names]

    def _keep(self, name: str):
        def hook(module, args, out):
            self.calls[name].append(dict(out=out, grad=torch.is_grad_enabled(),
                                         training=module.training))
        return hook

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def reference_depth_loss(gt_depth: torch.Tensor, depth: torch.Tensor, depth_cfg: list[float],
                         downsample: int, weight: float) -> float:
    """Spec 2.7.5 in float64 numpy: per-patch min non-zero depth, truncated bin, foreground BCE.

    Args:
        gt_depth: (B, N, H, W) sparse depth.
        depth: (B*N, D, h, w) softmax depth.
    """
    lo, _, step = depth_cfg
    gt = gt_depth.double().numpy()
    pred = depth.detach().double().numpy()
    num_bins = pred.shape[1]
    total, count = 0.0, 0
    for view, image in enumerate(gt.reshape(-1, *gt.shape[2:])):
        for row in range(image.shape[0] // downsample):
            for col in range(image.shape[1] // downsample):
                patch = image[row * downsample:(row + 1) * downsample,
                              col * downsample:(col + 1) * downsample]
                valid = patch[patch > 0]
                if valid.size == 0:
                    continue
                q = int((valid.min() - (lo - step)) / step)
                if not 1 <= q <= num_bins:
                    continue
                target = np.zeros(num_bins)
                target[q - 1] = 1.0
                p = pred[view, :, row, col]
                total -= (target * np.log(p) + (1 - target) * np.log(1 - p)).sum()
                count += 1
    return weight * total / max(count, 1)


def test_loss_terms_match_spec_formulas(batch):
    """All five loss terms are finite and the 3-D / depth terms equal the spec's formulas on the
    captured raw outputs; the renderer reads the decoders' (B, Z, Y, X, C) fields as they are."""
    model = build_model(**LOSS_3D).train()
    names = ('img_view_transformer', 'density_decoder', 'semantic_decoder')
    render_args = []
    handle = model.renderer.register_forward_pre_hook(
        lambda module, args: render_args.append(args))
    with Recorder(model, names) as rec:
        losses = model(**batch, mode='loss')
    handle.remove()

    assert set(losses) == {'loss_depth', 'loss_render_depth', 'loss_render_semantics',
                           'loss_density', 'loss_semantic'}
    for name, value in losses.items():
        assert value.ndim == 0 and torch.isfinite(value) and value.requires_grad, name

    raw_density = rec.calls['density_decoder'][0]['out']  # (B, Z, Y, X, 1), the model layout
    raw_logits = rec.calls['semantic_decoder'][0]['out']  # (B, Z, Y, X, 17)
    assert raw_density.shape == (2, 8, 32, 32, 1) and raw_logits.shape == (2, 8, 32, 32, 17)
    density, logits = swap_x_z(raw_density), swap_x_z(raw_logits)  # Occ3D's (B, X, Y, Z, C)
    labels = gt_labels(batch).long()
    occupied = labels != FREE
    assert 0 < occupied.sum() < occupied.numel()
    p = density[..., 0].detach().double()
    expected_density = -torch.where(occupied, p.log(), (1 - p).log()).mean()
    log_probs = logits.detach().double().log_softmax(-1)[occupied]  # (V_occ, 17)
    expected_semantic = -log_probs.gather(1, labels[occupied][:, None]).mean()
    torch.testing.assert_close(losses['loss_density'].double(), expected_density, rtol=1e-5,
                               atol=0)
    torch.testing.assert_close(losses['loss_semantic'].double(), expected_semantic, rtol=1e-5,
                               atol=0)

    # The depth loss supervises the key frame's depth (the view transformer's last call).
    vt_calls = rec.calls['img_view_transformer']
    assert len(vt_calls) == 2
    key_depth = vt_calls[-1]['out'][1]
    assert key_depth.shape == (2 * 2, 11, 4, 12)
    expected_depth = reference_depth_loss(gt_depths(batch), key_depth, [1.0, 45.0, 4.0], 16, 0.05)
    assert losses['loss_depth'].item() == pytest.approx(expected_depth, rel=1e-5)

    (args,) = render_args
    assert args[0] is raw_density and args[1] is raw_logits
    assert len(args) == 4 and all(
        flow is sample.gt_flow for flow, sample in zip(args[3], batch['data_samples']))
    # the renderer gets the selected rays only: here all rays of both samples (fewer than
    # rays_batch_size), permuted, each with its sample index
    rays = args[2]
    assert isinstance(rays, LidarRays)
    assert len(rays) == sum(len(sample) for sample in gt_rays(batch)) < model.rays_batch_size
    assert sorted(rays.batch_idx.tolist()) == [0] * len(gt_rays(batch)[0]) + [1] * len(
        gt_rays(batch)[1])


def test_losses_equal_the_loss_modules_on_the_selected_rays(batch):
    """``loss`` selects the rays once (one permutation over the batch's rays, the first
    ``rays_batch_size``), renders only them and calls its loss modules on them: every render
    term equals the same modules called by hand on the same rays and random draws."""
    extra = dict(loss_point_semantics=dict(type='RenderSemanticLoss', loss_weight=0.7),
                 loss_ray_occupancy=dict(type='RayOccupancyLoss', loss_weight=1.0,
                                         hit_weight=8.0),
                 loss_distortion=dict(type='DistortionLoss', loss_weight=0.01),
                 ray_class_weights=dict(type='ClassBalancedLogWeights',
                                        class_frequencies=list(range(1, 18))),
                 loss_render_depth=dict(type='RenderDepthLoss', loss_weight=0.3, loss_type='l1'))
    model = build_model(rays_batch_size=100, **extra).train()
    fields, rng = [], []

    def keep_fields(module, args, out):
        fields.append(out)
        rng.append(torch.get_rng_state())  # the ray selection draws next

    model.density_decoder.register_forward_hook(lambda m, a, out: fields.append(out))
    model.semantic_decoder.register_forward_hook(keep_fields)
    losses = model(**batch, mode='loss')
    assert list(losses)[1:] == ['loss_render_depth', 'loss_render_semantics',
                                'loss_render_distortion', 'loss_ray_occupancy',
                                'loss_point_semantics']

    density, semantics = fields
    torch.set_rng_state(rng[0])
    all_rays = flatten_rays(gt_rays(batch))
    indices = torch.randperm(len(all_rays))[:100]
    rays = all_rays.select(indices)
    with torch.no_grad():
        rendered = model.renderer(density, semantics, rays, gt_flows(batch))
        class_weights = MODELS.build(extra['ray_class_weights'])(rays.labels)
        free, targets, valid = MODELS.build(extra['loss_ray_occupancy']).samples(
            rays.depth, model.renderer.near)
        expected = dict(
            loss_render_depth=MODELS.build(extra['loss_render_depth'])(
                rendered.depth, rays.depth, class_weights),
            loss_render_semantics=MODELS.build(dict(type='RenderSemanticLoss'))(
                rendered.semantics, rays.labels, class_weights),
            loss_render_distortion=0.01 * ray_distortion(rendered.weights, rendered.starts,
                                                         rendered.ends).mean(),
            loss_ray_occupancy=MODELS.build(extra['loss_ray_occupancy'])(
                rendered.density_at(free), targets, valid),
            loss_point_semantics=0.7 * (class_weights * F.cross_entropy(
                rendered.semantics_at(rays.depth[:, None])[:, 0], rays.labels,
                reduction='none')).mean())
    assert len(rendered) == 100 < len(all_rays)
    for key, value in expected.items():
        assert torch.equal(losses[key].detach(), value), key


def test_predict_labels_free_below_each_threshold(batch):
    """pred_occ (n_tau, X, Y, Z) uint8 = argmax class, 17 where density < tau (strict), per
    sample of a batch of 2; eval mode makes a sample's prediction independent of the batch."""
    model = build_model().eval()
    with torch.no_grad():
        raw = model(**batch, mode='tensor')
        alone = model(**take_sample(batch, 1), mode='tensor')
    torch.testing.assert_close(alone['density'], raw['density'][1:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(alone['semantics'], raw['semantics'][1:], rtol=1e-4, atol=1e-4)
    # the fields come in the model's (B, Z, Y, X, C) layout, pred_occ in Occ3D's (X, Y, Z)
    density, semantics = swap_x_z(raw['density']), swap_x_z(raw['semantics'])

    thresholds = torch.quantile(density.flatten(), torch.tensor([0.25, 0.75])).tolist()
    thresholds[0] = density.flatten()[7].item()  # a value that occurs: strict < keeps it occupied
    model.eval_thresholds = thresholds
    with torch.no_grad():
        samples = model(**batch, mode='predict')
    assert len(samples) == 2
    argmax = semantics.argmax(-1)
    for b, sample in enumerate(samples):
        pred = sample.pred_occ
        assert pred.dtype == torch.uint8 and pred.shape == (2, 32, 32, 8)
        assert sample.eval_thresholds == thresholds
        for i, tau in enumerate(thresholds):
            free = density[b, ..., 0] < tau
            assert 0 < free.sum() < free.numel()
            expected = torch.where(free, torch.full_like(argmax[b], FREE), argmax[b])
            assert torch.equal(pred[i].long(), expected)
    assert samples[0].pred_occ[0].flatten()[7] != FREE  # density == tau is not free

    # tau applies to sigma = density_scale * density: scale 4 and tau 4t = scale 1 and tau t
    model.renderer.density_scale = 4.0
    model.eval_thresholds = [4.0 * tau for tau in thresholds]
    with torch.no_grad():
        scaled = model(**batch, mode='predict')
    for sample, original in zip(scaled, samples):
        assert torch.equal(sample.pred_occ, original.pred_occ)


def test_gradient_reaches_only_the_key_frame_images(single):
    """Reference frames run without grad (spec 2.4): the image gradient is exactly zero on the
    t-1 / t-2 slices and non-zero on t; the no-grad passes still run in train mode."""
    model = build_model().train()
    cameras = single['inputs']['img_inputs']
    imgs = cameras.imgs.clone().requires_grad_(True)  # (1, N*F, 3, H, W)
    inputs = dict(single, inputs=dict(img_inputs=dataclasses.replace(cameras, imgs=imgs)))
    with Recorder(model, ('img_neck', 'pre_process_net')) as rec:
        losses = model(**inputs, mode='loss')
    sum(losses.values()).backward()

    grad = imgs.grad.view(1, 2, 3, *imgs.shape[2:])  # camera-major: (B, N, F, 3, H, W)
    assert grad[:, :, 0].abs().sum(dim=(2, 3, 4)).min() > 0  # every camera of t
    assert torch.count_nonzero(grad[:, :, 1:]) == 0
    assert [(c['training'], c['grad']) for c in rec.calls['img_neck']] == [(True, False),
                                                                           (True, True)]
    assert [c['out'][0].requires_grad for c in rec.calls['pre_process_net']] == [False, True]


def test_reference_frames_reach_the_output_through_stereo_and_fusion(single):
    """Perturbing t-1 changes the voxel features and the key depth (the key frame's stereo
    reference); t-2 changes the voxel features only through the t-1 pass (spec 2.4)."""
    model = build_model().eval()
    imgs = single['inputs']['img_inputs'].imgs.view(1, 2, 3, 3, 64, 192)  # (B, N, F, 3, H, W)
    noise = 0.5 * torch.randn(imgs[:, :, 0].shape)

    def features_with(frame: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        perturbed = imgs.clone()
        if frame is not None:
            perturbed[:, :, frame] += noise
        with torch.no_grad():
            return model.extract_feat(dataclasses.replace(
                single['inputs']['img_inputs'], imgs=perturbed.view(1, 6, 3, 64, 192)))

    base_feats, base_depth = features_with(None)
    again_feats, _ = features_with(None)
    assert torch.equal(again_feats, base_feats)
    feats_tm1, depth_tm1 = features_with(1)
    feats_tm2, depth_tm2 = features_with(2)
    assert (feats_tm1 - base_feats).abs().max() > 1e-3
    assert (depth_tm1 - base_depth).abs().max() > 1e-5
    assert (feats_tm2 - base_feats).abs().max() > 1e-5
    assert torch.equal(depth_tm2, base_depth)


def test_batchnorm_statistics_updated_by_every_frame_pass(single):
    """Per-frame BNs see two train-mode passes (t-1 without grad, t), the 3-D encoder one; the
    running mean follows both passes' batch means."""
    model = build_model().train()
    norms = {name: module for name, module in model.named_modules()
             if isinstance(module, nn.modules.batchnorm._BatchNorm)}
    before = {name: int(bn.num_batches_tracked) for name, bn in norms.items()}
    probe = model.pre_process_net.get_submodule(
        next(n for n, m in model.pre_process_net.named_modules() if isinstance(m, nn.BatchNorm3d)))
    running_mean0 = probe.running_mean.clone()
    probe_inputs = []
    handle = probe.register_forward_pre_hook(lambda m, args: probe_inputs.append(args[0]))
    model(**single, mode='loss')
    handle.remove()

    for name, bn in norms.items():
        passes = 2 if name.startswith(PER_FRAME_MODULES) else 1
        assert name.startswith(PER_FRAME_MODULES + ENCODER_MODULES), name
        assert int(bn.num_batches_tracked) - before[name] == passes, name
    assert sum(n.startswith(PER_FRAME_MODULES) for n in norms) >= 3
    momentum = probe.momentum
    expected = running_mean0
    for x in probe_inputs:
        expected = (1 - momentum) * expected + momentum * x.detach().mean(dim=(0, 2, 3, 4))
    assert len(probe_inputs) == 2
    torch.testing.assert_close(probe.running_mean, expected, rtol=1e-5, atol=1e-6)


def test_adamw_steps_decrease_the_losses(single):
    """A few AdamW steps on one fixed batch lower the total and the depth loss (same random
    state for every forward, so only the weights change)."""
    model = build_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    history = []
    for _ in range(5):
        torch.manual_seed(1)
        losses = model(**single, mode='loss')
        total = sum(losses.values())
        history.append((total.item(), losses['loss_depth'].item()))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    (total0, depth0), (total_n, depth_n) = history[0], history[-1]
    assert total_n < 0.8 * total0, history
    assert depth_n < 0.95 * depth0, history


def test_train_and_test_step_through_the_data_preprocessor(batch):
    """mmengine's train_step on the loader's collated form: the optimised loss is the sum of all
    terms (spec 2.10 step 6) and the weights move; test_step predicts every sample."""
    model = build_model(**LOSS_3D).train()
    before = model.final_conv.conv.weight.detach().clone()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(to_collated(batch), wrapper)
    terms = {'loss_depth', 'loss_render_depth', 'loss_render_semantics', 'loss_density',
             'loss_semantic'}
    assert set(log_vars) == terms | {'loss'}
    assert log_vars['loss'].item() == pytest.approx(sum(log_vars[k].item() for k in terms),
                                                    rel=1e-6)
    assert not torch.equal(model.final_conv.conv.weight, before)

    model.eval()
    samples = model.test_step(to_collated(batch, with_gt=False))
    assert [tuple(s.pred_occ.shape) for s in samples] == [(1, 32, 32, 8)] * 2


@pytest.mark.parametrize('variant', ['2d', '2d_flow'])
def test_renderer_variants_train(variant):
    """The static-filter (_2d) and flow (_2d_flow) renderers run loss() and backpropagate into
    both decoders; flow needs gt_flow."""
    if variant == '2d':
        model = build_model(renderer=dict(temporal_filter=True, use_flow=False,
                                          ignore_classes=list(DYNAMIC_CLASSES)))
        inputs = make_batch(batch_size=1, ignore_classes=DYNAMIC_CLASSES)
        rays = gt_rays(inputs)[0]
        assert not torch.isin(rays.labels[rays.frame_idx != 3],
                              torch.tensor(DYNAMIC_CLASSES)).any()
        inputs = with_gt(inputs, gt_flow=[None])
    else:
        model = build_model()
        inputs = make_batch(batch_size=1)
    model.train()
    losses = model(**inputs, mode='loss')
    assert set(losses) == {'loss_depth', 'loss_render_depth', 'loss_render_semantics'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for decoder in (model.density_decoder, model.semantic_decoder):
        grads = [p.grad for p in decoder.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    if variant == '2d_flow':
        with pytest.raises(ValueError, match='gt_flow'):
            model(**with_gt(inputs, gt_flow=[None]), mode='loss')


@pytest.mark.parametrize('given', ['loss_occ_density', 'loss_occ_semantics'])
def test_single_3d_loss_is_rejected(given):
    with pytest.raises(ValueError, match='loss_occ_density and loss_occ_semantics'):
        build_model(**{given: LOSS_3D[given]})


def test_loss_under_cpu_autocast_keeps_depth_loss_in_float32(single, monkeypatch):
    """Under bf16 autocast (what AmpOptimWrapper.optim_context enters) the losses are finite,
    the decoders run in bf16 and the depth BCE runs with autocast off on float32 inputs."""
    model = build_model().train()
    bce_calls = []
    original_bce = F.binary_cross_entropy

    def recording_bce(pred, target, *args, **kwargs):
        bce_calls.append((torch.is_autocast_enabled('cpu'), pred.dtype, target.dtype))
        return original_bce(pred, target, *args, **kwargs)

    monkeypatch.setattr(F, 'binary_cross_entropy', recording_bce)
    with Recorder(model, ('img_view_transformer', 'density_decoder')) as rec:
        with autocast(device_type='cpu', dtype=torch.bfloat16):
            losses = model(**single, mode='loss')
    assert rec.calls['density_decoder'][0]['out'].dtype == torch.bfloat16
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_depth'].dtype == torch.float32
    assert bce_calls == [(False, torch.float32, torch.float32)]
    key_depth = rec.calls['img_view_transformer'][-1]['out'][1]
    expected = reference_depth_loss(gt_depths(single), key_depth.float(), [1.0, 45.0, 4.0], 16,
                                    0.05)
    assert losses['loss_depth'].item() == pytest.approx(expected, rel=1e-5)


def test_backward_after_cpu_autocast_gives_finite_gradients(tmp_path):
    """The AmpOptimWrapper step: bf16-autocast forward, backward outside autocast; every
    parameter gets a finite float32 gradient.

    Runs in a child process with oneDNN limited to AVX2: its AVX512-BF16 kernels compute the bf16
    Conv3d weight gradient nondeterministically (measured on an AVX512-BF16 CPU, tiny model, 30
    seeds run twice each: 29 of 30 pairs differ and 5 of 60 gradients of the 3-D encoder's third
    stage hold NaN from finite inputs; limited to AVX2: 60 of 60 finite, every pair identical).
    That is a CPU-library defect outside the GPU AMP path this test stands for.
    """
    out = tmp_path / 'step.pt'
    env = dict(os.environ, OMP_NUM_THREADS='1', ONEDNN_MAX_CPU_ISA='AVX2',
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable, str(Path(__file__).with_name('amp_backward_step.py')),
                             str(out)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    step = torch.load(out)
    assert all(np.isfinite(v) for v in step['losses'].values()), step['losses']
    for name, grad in step['grads'].items():
        assert grad is not None, name
        dtype, finite, _ = grad
        assert dtype == 'torch.float32' and finite, (name, grad)
    assert step['grads']['density_decoder.layers.0.weight'][2] > 0


def test_geometry_defaults_match_the_tiny_config():
    """The synthetic world's grid is the config's (guards the builders against config edits)."""
    cfg = tiny_model_config()
    geo = Geometry()
    geometry = OccGeometry.build(cfg.model.geometry)
    assert geometry.model_grid.shape == geo.grid_size
    assert geometry.model_grid.pc_range == geo.pc_range
    assert tuple(cfg.model.img_view_transformer.input_size) == (geo.height, geo.width)


def test_synthetic_key_frame_rays_end_on_their_surfaces(batch):
    """Builder check: key-frame rays (z-depth along the camera axis) end on the ground, in
    ground (or car) voxels, or on the car box, in both the plain and the BEV-flipped sample."""
    for b in range(2):
        rays = gt_rays(batch)[b]
        idx, depth, labels = rays.frame_cam, rays.depth, rays.labels
        bda = batch['inputs']['img_inputs'].bda[b]
        key = idx[:, 0] == 3
        cams = idx[key, 1]
        forward = torch.stack([bda @ sensor2ego(int(c))[:3, 2].float() for c in cams])
        dirs = rays.directions[key]
        ranges = depth[key] / (dirs * forward).sum(-1)  # z-depth -> distance along the ray
        ends = rays.origins[3, cams] + dirs * ranges[:, None]
        ends_unflipped = ends @ bda.T  # bda is its own inverse
        ground = labels[key] == GROUND
        assert ground.sum() > 10 and (labels[key] == CAR).sum() > 0
        torch.testing.assert_close(ends_unflipped[ground, 2], torch.zeros(int(ground.sum())),
                                   rtol=0, atol=1e-4)
        voxel = ((ends - torch.tensor([-40.0, -40.0, -1.0])) / torch.tensor([2.5, 2.5, 0.8]))
        voxel = voxel.floor().long()
        hit = gt_labels(batch)[b][tuple(voxel[ground].T)].long()
        assert torch.isin(hit, torch.tensor([GROUND, CAR])).all()  # car voxels cover its ground
        assert (hit == GROUND).float().mean() > 0.8
        car_ends = ends_unflipped[labels[key] == CAR]
        offset = (car_ends - torch.tensor(CAR_CENTRE)).abs() - torch.tensor(CAR_HALF)
        assert (offset.amax(-1).abs() < 1e-3).all()  # on the box surface


def test_density_prior_adds_the_weighted_mean_density():
    model = build_model(loss_density_prior=dict(type='DensitySparsityLoss', loss_weight=0.3))
    captured = []
    model.density_decoder.register_forward_hook(lambda m, i, out: captured.append(out))
    model.train()
    losses = model(**make_batch(batch_size=1), mode='loss')
    assert set(losses) == {'loss_depth', 'loss_render_depth', 'loss_render_semantics',
                           'loss_density_prior'}
    (density, ) = captured
    torch.testing.assert_close(losses['loss_density_prior'], 0.3 * density.mean())
