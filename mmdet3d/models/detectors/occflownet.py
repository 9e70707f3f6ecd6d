"""``OccFlowNet``: voxel features -> density and semantics, trained by rendering LiDAR rays.

``loss()`` reads top to bottom: encode the frames (``BEVStereo4D.extract_feat``), depth loss,
decode the density/semantic fields, optional 3-D voxel losses, select the rays of this iteration
from the 7 frames' rays of the batch, render them (with the static filter or occupancy flow) and
compute their losses (spec 2.10).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mmdet3d.models.layers.conv_module import ConvModule
from mmdet3d.models.losses.distortion_loss import ray_distortion
from mmdet3d.models.rendering.flow_warping import downsample_flow
from mmdet3d.models.rendering.ray_batching import flatten_rays, select_ray_indices
from mmdet3d.models.rendering.volume_renderer import RenderedRays
from mmdet3d.registry import MODELS
from mmdet3d.structures import OccDataSample
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ3d import FREE_LABEL
from mmdet3d.structures.occ_geometry import with_geometry
from mmdet3d.structures.voxel_grids import pool_majority, swap_x_z, upsample_nearest

from .bevstereo4d import BEVStereo4D


def _build_optional(cfg: dict | None):
    """``MODELS.build(cfg)``, or None where no config is given (an optional loss is off)."""
    return MODELS.build(cfg) if cfg is not None else None


@MODELS.register_module()
class OccFlowNet(BEVStereo4D):
    """Self-supervised occupancy network of Boeder et al. (arXiv 2402.12792).

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict), handed to the
            view transformer and the renderer. When its model grid is coarser than its label
            grid (by integer factors per axis, e.g. a 100x100x16 model for the 200x200x16
            Occ3D grid), predicted labels are nearest-upsampled to the label grid, the voxel
            indices of the flow rows (given in the label grid) are divided down to the model
            grid and the 3-D losses learn each block's majority label (ties to the smaller
            label); the paper configs' grids are one.
        img_backbone, img_neck, img_view_transformer, img_bev_encoder_backbone,
        img_bev_encoder_neck, pre_process, data_preprocessor: passed on to
            :class:`~.bevstereo4d.BEVStereo4D` (keyword arguments, as from a config).
        density_decoder: config of the density ``PointDecoder`` (sigmoid output).
        semantic_decoder: config of the semantic ``PointDecoder`` (17 logits).
        renderer: config of the ``VolumeRenderer`` (geometry, sampling, dynamic objects).
        rays_batch_size: rays rendered per training iteration for the whole batch, drawn by one
            permutation over all rays of its samples (:meth:`select_rays`). Defaults to 32768.
        ray_class_weights: config of the per-ray class weights of the render losses (e.g.
            ``ClassBalancedLogWeights``, optionally with the ``class_frequencies`` of the
            training data); None: weight 1 for every ray. Defaults to the log weights of the
            Occ3D-nuScenes table (the original).
        loss_render_depth: config of the rendered-depth loss (``RenderDepthLoss``), reported as
            ``loss_render_depth``. Defaults to the original's MSE of weight 0.05.
        loss_render_semantics: config of the rendered-class loss (``RenderSemanticLoss``),
            reported as ``loss_render_semantics``. Defaults to weight 1.0.
        loss_point_semantics: config of a class-weighted loss on the semantic logits at each
            rendered ray's LiDAR return (``RenderSemanticLoss``), reported as
            ``loss_point_semantics``; None: none (the original). Defaults to None.
        loss_ray_occupancy: config of ``RayOccupancyLoss`` (the density free before each
            rendered ray's return and occupied at it), reported as ``loss_ray_occupancy``; None:
            none (the original). Defaults to None.
        loss_distortion: config of a loss on each rendered ray's distortion (``DistortionLoss``),
            reported as ``loss_render_distortion``; None: none (the original). Defaults to None.
        out_dim: channels of ``final_conv`` (the decoders' input). Defaults to 64.
        eval_threshold_range: density thresholds tau; at test time voxels with
            sigma < tau are free, sigma = the renderer's ``density_scale`` x the sigmoid density
            (the density itself in the original, scale 1). Defaults to (0.35,).
        loss_occ_density: config of the 3-D density loss (``_3d`` variant). Defaults to None.
        loss_occ_semantics: config of the 3-D semantic loss (``_3d`` variant). Defaults to None.
        loss_density_prior: config of a prior on the whole density field (e.g.
            ``DensitySparsityLoss``), for the space no ray constrains; ``loss_density_prior``
            in the losses. None: none (the original). Defaults to None.
    """

    def __init__(self,
                 *,
                 density_decoder: dict,
                 semantic_decoder: dict,
                 renderer: dict,
                 rays_batch_size: int = 32768,
                 ray_class_weights: dict | None = dict(type='ClassBalancedLogWeights'),
                 loss_render_depth: dict = dict(type='RenderDepthLoss', loss_weight=0.05),
                 loss_render_semantics: dict = dict(type='RenderSemanticLoss', loss_weight=1.0),
                 loss_point_semantics: dict | None = None,
                 loss_ray_occupancy: dict | None = None,
                 loss_distortion: dict | None = None,
                 out_dim: int = 64,
                 eval_threshold_range: Sequence[float] = (0.35,),
                 loss_occ_density: dict | None = None,
                 loss_occ_semantics: dict | None = None,
                 loss_density_prior: dict | None = None,
                 **bevstereo4d: Any) -> None:
        super().__init__(**bevstereo4d)
        if (loss_occ_density is None) != (loss_occ_semantics is None):
            raise ValueError('loss_occ_density and loss_occ_semantics must be set together')
        if rays_batch_size < 1:
            raise ValueError(f'rays_batch_size must be >= 1, got {rays_batch_size}')
        self.final_conv = ConvModule(
            self.img_view_transformer.out_channels, out_dim, kernel_size=3, padding=1, dims=3,
            with_norm=False, with_act=True, bias=True)
        # the decoders read final_conv's out_dim channels unless their config says otherwise
        self.density_decoder = MODELS.build(dict(dict(in_channels=out_dim), **density_decoder))
        self.semantic_decoder = MODELS.build(dict(dict(in_channels=out_dim), **semantic_decoder))
        self.renderer = MODELS.build(with_geometry(renderer, self.geometry, 'renderer'))
        self.rays_batch_size = int(rays_batch_size)
        self.eval_thresholds = [float(tau) for tau in eval_threshold_range]
        self.loss_occ_density = _build_optional(loss_occ_density)
        self.loss_occ_semantics = _build_optional(loss_occ_semantics)
        self.loss_density_prior = _build_optional(loss_density_prior)
        self.ray_class_weights = _build_optional(ray_class_weights)
        self.loss_render_depth = MODELS.build(loss_render_depth)
        self.loss_render_semantics = MODELS.build(loss_render_semantics)
        self.loss_point_semantics = _build_optional(loss_point_semantics)
        self.loss_ray_occupancy = _build_optional(loss_ray_occupancy)
        self.loss_distortion = _build_optional(loss_distortion)

    def decode_fields(self, voxel_feats: Tensor) -> tuple[Tensor, Tensor]:
        """Final conv and the two per-voxel decoders.

        Args:
            voxel_feats: (B, C, Z, Y, X) encoded voxel features.

        Returns:
            density (B, Z, Y, X, 1) in (0, 1) and semantics (B, Z, Y, X, 17) logits: the model's
            voxel layout (``mmdet3d.structures.voxel_grids``), converted to Occ3D's (X, Y, Z)
            only by :meth:`predict`.
        """
        feats = self.final_conv(voxel_feats).permute(0, 2, 3, 4, 1)  # (B,C,Z,Y,X) -> (B,Z,Y,X,C)
        return self.density_decoder(feats), self.semantic_decoder(feats)

    def upsample_labels(self, labels: Tensor) -> Tensor:
        """Nearest-upsample (..., X, Y, Z) model-grid labels to the label grid (no-op when the
        grids are one)."""
        return upsample_nearest(labels, self.geometry.grid_factors)

    def select_rays(self, rays: Sequence[LidarRays], perm: Tensor | None = None) -> LidarRays:
        """The rays rendered in this training iteration: the B samples' rays flattened
        (``flatten_rays``) and the first ``rays_batch_size`` of one permutation over all of them
        (``select_ray_indices``).

        Args:
            rays: the B samples' rays.
            perm: (R_tot,) permutation instead of torch.randperm. Defaults to None.

        Returns:
            the selected R = min(R_tot, rays_batch_size) rays, with their ``batch_idx``.
        """
        all_rays = flatten_rays(rays)
        indices = select_ray_indices(len(all_rays), self.rays_batch_size, perm,
                                     all_rays.origins.device)
        return all_rays.select(indices)

    def render(self, density: Tensor, semantics: Tensor, rays: LidarRays,
               voxel_flow: list[Tensor] | None = None, **renderer_kwargs) -> RenderedRays:
        """Render rays through the decoded fields with the model's ``VolumeRenderer``.

        Args:
            density: (B, Z, Y, X, 1) and semantics (B, Z, Y, X, K), as :meth:`decode_fields`.
            rays: the rays to render: a flattened batch (e.g. :meth:`select_rays`) or the rays
                of one sample (both BEV-augmented, as the data samples' ``gt_rays``).
            voxel_flow: B tensors (F_b, 11) in label-grid indices of the BEV-augmented frame
                (the data samples' ``gt_flow``), brought to the model grid here; None for
                renderers without flow. Defaults to None.
            renderer_kwargs: ``jitter_rand`` of ``VolumeRenderer.forward``.

        Returns:
            ``VolumeRenderer.forward``'s :class:`RenderedRays` of the given rays.
        """
        if voxel_flow is not None:
            voxel_flow = downsample_flow(voxel_flow, self.geometry.grid_factors)
        return self.renderer(density, semantics, rays, voxel_flow, **renderer_kwargs)

    def ray_weights(self, labels: Tensor) -> Tensor:
        """(R,) labels -> (R,) class weights of the render losses (1 without
        ``ray_class_weights``)."""
        if self.ray_class_weights is None:
            return torch.ones(len(labels), device=labels.device)
        return self.ray_class_weights(labels)

    def ray_losses(self, depth: Tensor, semantics: Tensor, rays: LidarRays,
                   weights: Tensor | None = None) -> dict[str, Tensor]:
        """The class-weighted depth and class losses of rendered rays.

        Args:
            depth: (R, 1) rendered depth and semantics (R, K) rendered logits of ``rays``.
            rays: the R rendered rays (their depth and labels are the targets).
            weights: (R,) class weights (:meth:`ray_weights`); None: computed here.

        Returns:
            ``loss_render_depth`` and ``loss_render_semantics``.
        """
        if weights is None:
            weights = self.ray_weights(rays.labels)
        return dict(
            loss_render_depth=self.loss_render_depth(depth, rays.depth.to(depth.dtype), weights),
            loss_render_semantics=self.loss_render_semantics(semantics, rays.labels, weights))

    def render_losses(self, rendered: RenderedRays, rays: LidarRays) -> dict[str, Tensor]:
        """The losses of a rendering of ``rays``: :meth:`ray_losses` and the optional terms.

        Args:
            rendered: :meth:`render`'s output for ``rays``.
            rays: the R rendered rays.

        Returns:
            ``loss_render_depth``, ``loss_render_semantics`` and, with their losses,
            ``loss_render_distortion``, ``loss_ray_occupancy`` and ``loss_point_semantics``.
        """
        weights = self.ray_weights(rays.labels)
        losses = self.ray_losses(rendered.depth, rendered.semantics, rays, weights)
        if self.loss_distortion is not None:
            losses['loss_render_distortion'] = self.loss_distortion(
                ray_distortion(rendered.weights, rendered.starts, rendered.ends))  # (R,)
        if self.loss_ray_occupancy is not None:
            distances, targets, valid = self.loss_ray_occupancy.samples(rays.depth,
                                                                        self.renderer.near)
            losses['loss_ray_occupancy'] = self.loss_ray_occupancy(
                rendered.density_at(distances), targets, valid)  # (R, P)
        if self.loss_point_semantics is not None:
            losses['loss_point_semantics'] = self.loss_point_semantics(
                rendered.semantics_at(rays.depth[:, None])[:, 0], rays.labels, weights)  # (R, K)
        return losses

    def forward(self,
                inputs: dict,
                data_samples: list[OccDataSample] | None = None,
                mode: str = 'tensor'):
        """Dispatch to :meth:`loss`, :meth:`predict` or the raw fields ('tensor': density and
        semantics in the model's (B, Z, Y, X, C) layout).

        Args:
            inputs: batched inputs of ``OccDataPreprocessor`` (``docs/data_flow.md`` section 3).
            data_samples: per-sample metadata and ground truth (needed by 'loss'). Defaults to
                None.
            mode: 'loss', 'predict' or 'tensor'. Defaults to 'tensor'.
        """
        if mode == 'loss':
            if data_samples is None:
                raise ValueError("mode='loss' needs the data samples (the ground truth)")
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            voxel_feats, _ = self.extract_feat(inputs['img_inputs'])
            density, semantics = self.decode_fields(voxel_feats)
            return dict(density=density, semantics=semantics)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, inputs: dict, data_samples: Sequence[OccDataSample]) -> dict[str, Tensor]:
        """Training losses of one batch.

        Args:
            inputs: needs ``img_inputs``.
            data_samples: the B samples' ground truth: ``gt_depth`` (N, H, W), ``gt_rays``;
                ``gt_flow`` for flow renderers; ``gt_occ`` for the 3-D losses.

        Returns:
            ``loss_depth``, with 3-D supervision ``loss_density`` and ``loss_semantic``, with a
            density prior ``loss_density_prior``, and the render losses of
            :meth:`render_losses`.
        """
        voxel_feats, depth = self.extract_feat(inputs['img_inputs'])
        gt_depth = torch.stack([sample.gt_depth for sample in data_samples])  # (B, N, H, W)
        losses = self.img_view_transformer.get_depth_loss(gt_depth, depth)
        density, semantics = self.decode_fields(voxel_feats)
        losses.update(self.field_losses(density, semantics, data_samples))
        return losses

    def field_losses(self, density: Tensor, semantics: Tensor,
                     data_samples: Sequence[OccDataSample]) -> dict[str, Tensor]:
        """The losses of the decoded fields: 3-D losses, density prior and render losses (the
        rays of :meth:`select_rays` rendered and scored by :meth:`render_losses`).

        Everything of :meth:`loss` after the image encoder, so that fields from elsewhere (e.g.
        free voxel fields fitted without the network, ``tools/analysis_tools/fit_fields.py``)
        are trained by exactly the model's supervision.

        Args:
            density: (B, Z, Y, X, 1) sigmoid density and semantics (B, Z, Y, X, K) logits.
            data_samples: the B samples' ground truth: ``gt_rays``, ``gt_flow`` for flow
                renderers, ``gt_occ`` for the 3-D losses (BEV-augmented, as
                ``LoadAnnotationsBEVDepth`` leaves them).

        Returns:
            the losses of :meth:`loss` but ``loss_depth``.
        """
        losses = {}
        if self.loss_occ_density is not None:
            labels = torch.stack([torch.as_tensor(sample.gt_occ['semantics'])
                                  for sample in data_samples]).to(density.device)  # (B, X, Y, Z)
            if tuple(labels.shape[-3:]) != self.geometry.label_grid.shape:
                raise ValueError(f'gt_occ semantics (X, Y, Z) {tuple(labels.shape[-3:])} is not '
                                 f'the label grid {self.geometry.label_grid.shape}')
            if int(labels.min()) < 0 or int(labels.max()) > FREE_LABEL:
                raise ValueError(f'gt_occ semantics must lie in [0, {FREE_LABEL}]')
            # a coarser model grid learns each block's majority label (the grid's ceiling)
            labels = swap_x_z(pool_majority(labels, self.geometry.grid_factors))
            losses['loss_density'] = self.loss_occ_density(density, labels)
            losses['loss_semantic'] = self.loss_occ_semantics(semantics, labels)
        if self.loss_density_prior is not None:
            losses['loss_density_prior'] = self.loss_density_prior(density)
        rays = self.select_rays([sample.gt_rays for sample in data_samples])
        flows = [sample.get('gt_flow') for sample in data_samples]
        voxel_flow = None if any(flow is None for flow in flows) else flows
        rendered = self.render(density, semantics, rays, voxel_flow)
        losses.update(self.render_losses(rendered, rays))
        return losses

    def predict(self, inputs: dict,
                data_samples: list[OccDataSample] | None) -> list[OccDataSample]:
        """Occupancy prediction: argmax class, free where sigma < tau (spec 2.11).

        sigma = ``renderer.density_scale`` x density, the density the renderer integrates, so
        that tau keeps its meaning (1/m) when the scale is not the original's 1.

        Returns:
            the data samples with ``pred_occ`` (n_tau, X, Y, Z) uint8 (17 = free; X, Y, Z of
            the label grid) and ``eval_thresholds`` in their metainfo.
        """
        voxel_feats, _ = self.extract_feat(inputs['img_inputs'])
        density, semantics = self.decode_fields(voxel_feats)
        occupancy = swap_x_z(semantics.argmax(dim=-1).to(torch.uint8))  # (B, X, Y, Z)
        thresholds = density.new_tensor(self.eval_thresholds)
        sigma = self.renderer.density_scale * swap_x_z(density[..., 0])  # (B, X, Y, Z)
        free = sigma.unsqueeze(1) < thresholds.view(1, -1, 1, 1, 1)  # (B, n_tau, X, Y, Z)
        labels = torch.where(free, torch.full_like(occupancy, FREE_LABEL)[:, None],
                             occupancy[:, None])  # (B, n_tau, X, Y, Z)
        labels = self.upsample_labels(labels)  # (B, n_tau, X, Y, Z) of the label grid
        if data_samples is None:
            data_samples = [OccDataSample() for _ in range(len(labels))]
        for sample, pred in zip(data_samples, labels):
            sample.pred_occ = pred
            sample.set_metainfo(dict(eval_thresholds=list(self.eval_thresholds)))
        return data_samples
