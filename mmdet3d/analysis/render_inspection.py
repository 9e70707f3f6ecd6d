"""Render the key frame's LiDAR rays with a model's ``VolumeRenderer``, camera by camera.

Used by ``tools/visualize_render.py``: one training-pipeline sample
(:mod:`~mmdet3d.analysis.training_sample`) -> model fields (mode 'tensor') -> rendered depth and
class of every key-frame ray, next to the LiDAR ground truth at the ray's augmented pixel
(``LidarRays.pixels``), as the :class:`~mmdet3d.visualization.camera_rays.CameraRays` that
``visualization/render_figures.py`` draws. ``tools/analysis_tools/diagnose_training.py`` uses
:func:`build_model` and :func:`render_rays_chunked`.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner.checkpoint import load_checkpoint
from torch import Tensor, nn

from mmdet3d.datasets.transforms.image_inputs import IMG_MEAN, IMG_STD
from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.utils.checkpoint_io import route_mmengine_checkpoint_loading
from mmdet3d.visualization.camera_rays import CameraRays

from .training_sample import TrainingSample


def build_model(cfg: Config, checkpoint: str | None = None,
                device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in eval mode, with weights from ``checkpoint`` (None: random init)."""
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        route_mmengine_checkpoint_loading()
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


def denormalize_image(img: Tensor, swap_rb: bool = True) -> np.ndarray:
    """Invert ``normalize_image``: (3, H, W) float32 -> (H, W, 3) uint8 RGB."""
    chw = img.detach().cpu().numpy().astype(np.float64)
    hwc = chw.transpose(1, 2, 0) * np.asarray(IMG_STD) + np.asarray(IMG_MEAN)
    if swap_rb:
        hwc = hwc[..., ::-1]
    return np.clip(np.round(hwc), 0, 255).astype(np.uint8)


@torch.no_grad()
def render_rays_chunked(model: nn.Module, density: Tensor, semantics: Tensor,
                        rays: LidarRays, voxel_flow: list[Tensor] | None,
                        chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Render every given ray of one sample through ``model.render``, ``chunk`` rays at a time.

    Args:
        model: an ``OccFlowNet`` (its ``render`` is used).
        density: (1, X, Y, Z, 1) and semantics (1, X, Y, Z, K): the fields to render.
        rays: the R rays of the sample to render (BEV-augmented, as ``gt_rays``).
        voxel_flow: [(F, 11)] Occ3D-grid flow rows (BEV-augmented, as ``gt_flow``) for flow
            renderers, else None.
        chunk: rays per renderer call (bounds the (chunk, samples, K) lookups).

    Returns:
        depth (R,) metres along the unit ray and logits (R, K), in the given ray order.
    """
    chunk = max(1, chunk)
    depths, logits = [], []
    for start in range(0, len(rays), chunk):
        part = rays.select(torch.arange(start, min(start + chunk, len(rays))))
        out = model.render(density, semantics, part, voxel_flow)
        depths.append(out.depth[:, 0])
        logits.append(out.semantics)
    if not depths:
        return density.new_zeros(0), semantics.new_zeros(0, semantics.shape[-1])
    return torch.cat(depths), torch.cat(logits)


def range_to_z_factor(pixels: np.ndarray, intrin: np.ndarray, post_rot: np.ndarray,
                      post_tran: np.ndarray, half_pixel_shift: bool = True) -> np.ndarray:
    """Camera z-depth per metre of range along each ray, ``1 / ||d_cam||``.

    ``d_cam = ((u - cx) / fx, (v - cy) / fy, 1)`` at the un-augmented pixel, recovered from the
    augmented integer pixel's centre (``GenerateRays`` floors it): exact to within a pixel,
    i.e. to ~1e-3 relative.

    Args:
        pixels: (R, 2) augmented integer pixels. intrin: (3, 3). post_rot: (3, 3).
        post_tran: (3,). half_pixel_shift: the rays go through (u + 0.5, v + 0.5).
    """
    rot = np.asarray(post_rot, np.float64)[:2, :2]
    uv = (pixels.astype(np.float64) + 0.5 - np.asarray(post_tran, np.float64)[:2]) \
        @ np.linalg.inv(rot).T
    uv += 0.5 if half_pixel_shift else 0.0
    k = np.asarray(intrin, np.float64)
    d_cam = np.stack([(uv[:, 0] - k[0, 2]) / k[0, 0], (uv[:, 1] - k[1, 2]) / k[1, 1],
                      np.ones(len(uv))], axis=1)
    return 1.0 / np.linalg.norm(d_cam, axis=1)


@torch.no_grad()
def inspect_render(model: nn.Module, sample: TrainingSample,
                   chunk: int = 4096, max_rays_per_camera: int | None = None,
                   seed: int = 0) -> list[CameraRays]:
    """Fields of one sample and the rendering of its key-frame rays, per camera.

    Args:
        model: an ``OccFlowNet`` (eval mode is set by the caller).
        sample: output of :func:`~.training_sample.load_training_sample`.
        chunk: rays per renderer call. Defaults to 4096.
        max_rays_per_camera: random subset of each camera's rays (None: all). Defaults to None.
        seed: seed of the subset. Defaults to 0.

    Returns:
        one :class:`CameraRays` per camera, in the pipeline's camera order.
    """
    results, packed = sample.results, sample.packed
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    inputs, (data_sample,) = data['inputs'], data['data_samples']
    fields = model(inputs, data['data_samples'], mode='tensor')
    all_rays = packed['data_samples'].gt_rays  # on the CPU
    flow = data_sample.get('gt_flow')
    key = all_rays.frame_idx == model.renderer.current_timestep
    cams = list(results['cam_names'])
    cameras = results['img_inputs']
    frames = cameras.num_views // len(cams)
    rng = np.random.default_rng(seed)
    out = []
    for n, name in enumerate(cams):
        chosen = torch.nonzero(key & (all_rays.cam_idx == n))[:, 0]
        num_total = len(chosen)
        if max_rays_per_camera is not None and len(chosen) > max_rays_per_camera:
            chosen = chosen[np.sort(rng.choice(len(chosen), max_rays_per_camera,
                                               replace=False))]
        rays = all_rays.select(chosen)
        depth, logits = render_rays_chunked(
            model, fields['density'], fields['semantics'], rays.to(fields['density'].device),
            None if flow is None else [flow], chunk)
        pixels = rays.pixels.numpy()
        depth = depth.cpu().numpy().astype(np.float64)
        if not sample.depth_along_ray:
            depth *= range_to_z_factor(pixels, cameras.intrins[n].numpy(),
                                       cameras.post_rots[n].numpy(),
                                       cameras.post_trans[n].numpy(), sample.half_pixel_shift)
        out.append(CameraRays(
            name=name, image=denormalize_image(cameras.imgs[n * frames], sample.swap_rb),
            pixels=pixels, gt_depth=rays.depth.numpy(), gt_label=rays.labels.numpy(),
            depth=depth.astype(np.float32), label=logits.argmax(-1).cpu().numpy(),
            depth_kind='range' if sample.depth_along_ray else 'z-depth', num_total=num_total))
    return out
