"""``VolumeRenderer``: predicted volumes rendered along LiDAR rays (spec 3).

frame volumes (``frame_volumes``: shared / static filter / flow) -> the rays of this iteration
(``ray_batching``) -> samples along each ray (``ray_samplers``) -> volume lookup
(``grid_sampling``) -> weights and accumulation (``volume_rendering``); the class-weighted losses
of the rendered rays are ``mmdet3d.models.losses.render_losses.RenderLosses``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_geometry import OccGeometry

from ..losses.distortion_loss import ray_distortion
from ..losses.render_losses import RenderLosses
from .frame_volumes import build_frame_volumes
from .grid_sampling import trilinear_lookup
from .ray_batching import flatten_rays, select_ray_indices
from .ray_samplers import sample_along_rays
from .volume_rendering import (IMPLS, accumulate_along_rays, interval_midpoints,
                               weights_from_density)


@MODELS.register_module()
class VolumeRenderer(nn.Module):
    """Differentiable volume renderer of density/semantic voxel volumes along LiDAR rays.

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict): the volumes are
            its model grid (``pc_range``, ``grid_size`` (X, Y, Z)), the frames its
            ``render_frame_ids`` and the lookup convention its ``align_corners``.
        render_range: (near, far) along the rays, metres. Defaults to (0.05, 40.0).
        samples_per_ray: final samples per ray. Defaults to 100.
        prop_samples_per_ray: uniform proposal samples per ray. Defaults to 50.
        use_proposal: proposal + importance sampling (else one uniform pass). Defaults to True.
        rays_batch_size: rays rendered per iteration for the whole batch. Defaults to 32768.
        class_balanced_loss: weight rays by the class weight of their label. Defaults to True.
        class_frequencies: per-class voxel counts (17) the class weights are computed from
            (``class_balanced_log_weights``); None: Occ3D-nuScenes' table, as the original.
            ``tools/misc/class_frequencies.py`` counts them for a config's train split.
            Defaults to None.
        log_weighting: log-frequency class weights (the only implemented weighting).
            Defaults to True.
        temporal_filter: ``_2d``: non-current frames see the static density. Defaults to False.
        ignore_classes: classes made transparent by the filter. Defaults to None.
        use_flow: flow configs: per-frame volumes from ``apply_flow_clipped``. Defaults to False.
        flow_class_filter: with ``use_flow``, move only the voxels predicted as the flow row's
            class (the original, quirk 11); False moves every row. Defaults to True.
        depth_loss_weight: weight of ``loss_render_depth``. Defaults to 0.05.
        depth_loss_type: ``'mse'`` (the original) or ``'l1'`` (``RenderDepthLoss``).
            Defaults to 'mse'.
        semantic_loss_weight: weight of ``loss_render_semantics``. Defaults to 1.0.
        loss_distortion: config of a loss on each rendered ray's weights (e.g.
            ``DistortionLoss``), reported as ``loss_render_distortion``; None: none, as the
            original. Defaults to None.
        loss_ray_occupancy: config of ``RayOccupancyLoss``: the density free before each
            rendered ray's return and occupied at it, reported as ``loss_ray_occupancy``; None:
            none, as the original. Defaults to None.
        density_scale: sigma = density_scale * density (1/m). 1.0 is the original, where the
            sigmoid density is sigma itself and one 0.4 m cell stops at most 33 % of a ray
            (quirk 6), so a surface fills the cells in front of it too. Defaults to 1.0.
        render_impl: 'auto' | 'torch' | 'nerfacc' backend of weights, accumulation and importance
            sampling. Defaults to 'auto'.
    """

    def __init__(self,
                 geometry: OccGeometry | Mapping[str, Any],
                 render_range: Sequence[float] = (0.05, 40.0),
                 samples_per_ray: int = 100,
                 prop_samples_per_ray: int = 50,
                 use_proposal: bool = True,
                 rays_batch_size: int = 32768,
                 class_balanced_loss: bool = True,
                 class_frequencies: Sequence[float] | None = None,
                 log_weighting: bool = True,
                 temporal_filter: bool = False,
                 ignore_classes: Sequence[int] | None = None,
                 use_flow: bool = False,
                 flow_class_filter: bool = True,
                 depth_loss_weight: float = 0.05,
                 depth_loss_type: str = 'mse',
                 semantic_loss_weight: float = 1.0,
                 loss_distortion: dict | None = None,
                 loss_ray_occupancy: dict | None = None,
                 point_semantic_loss_weight: float = 0.0,
                 density_scale: float = 1.0,
                 render_impl: str = 'auto') -> None:
        super().__init__()
        if render_impl not in IMPLS:
            raise ValueError(f'render_impl must be one of {IMPLS}, got {render_impl!r}')
        if class_balanced_loss and not log_weighting:
            raise ValueError('only the log class weighting of the configs is implemented')
        if density_scale <= 0:
            raise ValueError(f'density_scale must be positive, got {density_scale}')
        self.geometry = OccGeometry.build(geometry)
        self.pc_range = self.geometry.model_grid.pc_range
        self.grid_size = self.geometry.model_grid.shape
        self.near, self.far = (float(v) for v in render_range)
        self.samples_per_ray = samples_per_ray
        self.prop_samples_per_ray = prop_samples_per_ray
        self.use_proposal = use_proposal
        self.rays_batch_size = rays_batch_size
        self.render_frame_ids = self.geometry.render_frame_ids
        self.num_frames = len(self.render_frame_ids)
        self.current_timestep = self.render_frame_ids.index(0)
        self.align_corners = self.geometry.align_corners
        self.density_scale = float(density_scale)
        self.render_impl = render_impl
        self.frame_volumes = build_frame_volumes(temporal_filter, use_flow, ignore_classes,
                                                 self.num_frames, self.current_timestep,
                                                 flow_class_filter)
        self.losses = RenderLosses(class_balanced_loss, class_frequencies, depth_loss_weight,
                                   depth_loss_type, semantic_loss_weight, loss_distortion,
                                   loss_ray_occupancy, point_semantic_loss_weight)

    def forward(self,
                density: Tensor,
                semantics: Tensor,
                rays: Sequence[LidarRays],
                bda: Tensor,
                voxel_flow: list[Tensor] | None = None,
                *,
                ray_perm: Tensor | None = None,
                jitter_rand: Tensor | None = None) -> dict[str, Tensor]:
        """Render one batch of rays.

        Args:
            density: (B, Z, Y, X, 1) sigmoid density; sigma = density_scale * density in 1/m.
            semantics: (B, Z, Y, X, K) logits.
            rays: the B samples' rays (key ego frame, after BDA).
            bda: (B, 3, 3) BEV augmentation matrices.
            voxel_flow: B tensors (F_b, 11) for ``use_flow``. Defaults to None.
            ray_perm: (R_tot,) ray permutation instead of torch.randperm. Defaults to None.
            jitter_rand: (R, S_uniform - 1) uniform numbers of the uniform pass. Defaults to None.

        Returns:
            dict with ``depth`` (R_tot, 1) metres and ``semantics`` (R_tot, K), zero for rays not
            rendered, ``indices`` (R,) of the rendered rays (R = min(R_tot, rays_batch_size))
            and, with ``loss_distortion``, ``distortion`` (R,) of the rendered rays, with
            ``loss_ray_occupancy``, ``ray_occupancy`` = (sigmoid density (R, P) at the free and
            hit points, targets (R, P), valid (R, P)), with ``point_semantic_loss_weight``,
            ``point_semantics`` (R, K) logits at the rendered rays' returns.
        """
        if tuple(density.shape[1:4]) != self.grid_size[::-1]:
            raise ValueError(f'volume (Z, Y, X) {tuple(density.shape[1:4])} does not match '
                             f'grid_size (X, Y, Z) {self.grid_size}')
        density_vol, semantics_vol = self.frame_volumes(density, semantics, bda, voxel_flow)
        all_rays = flatten_rays(rays)
        device, dtype = all_rays.origins.device, all_rays.origins.dtype
        indices = select_ray_indices(len(all_rays), self.rays_batch_size, ray_perm, device)
        batch = all_rays.select(indices)
        density_slots, semantics_slots = self.frame_volumes.slots(batch.batch_idx,
                                                                  batch.frame_idx)

        def points_at(distances: Tensor) -> Tensor:
            """(R, S) distances -> (R, S, 3) metric points."""
            return batch.origins[:, None] + distances[..., None] * batch.directions[:, None]

        def density_at(distances: Tensor) -> Tensor:
            """(R, S) distances -> (R, S) sigma in 1/m."""
            return self.density_scale * trilinear_lookup(
                density_vol, density_slots, points_at(distances), self.pc_range,
                self.align_corners)[..., 0]

        starts, ends, centres = sample_along_rays(
            density_at, len(batch), self.near, self.far, self.samples_per_ray,
            self.prop_samples_per_ray, self.use_proposal, jitter_rand, self.render_impl,
            device, dtype)
        weights, _, _ = weights_from_density(starts, ends, density_at(centres), self.render_impl)
        depth = accumulate_along_rays(weights, interval_midpoints(starts, ends),
                                      self.render_impl)  # (R, 1)
        logits = trilinear_lookup(semantics_vol, semantics_slots, points_at(centres),
                                  self.pc_range, self.align_corners)  # (R, S, K)
        sem = accumulate_along_rays(weights, logits, self.render_impl)  # (R, K)
        num_total = len(all_rays)
        out = dict(
            depth=depth.new_zeros(num_total, 1).index_copy(0, indices, depth),
            semantics=sem.new_zeros(num_total, sem.shape[-1]).index_copy(0, indices, sem),
            indices=indices)
        if self.losses.distortion is not None:
            out['distortion'] = ray_distortion(weights, starts, ends)  # (R,)
        if self.losses.ray_occupancy is not None:
            distances, targets, valid = self.losses.ray_occupancy.samples(batch.depth, self.near)
            occupancy = trilinear_lookup(density_vol, density_slots, points_at(distances),
                                         self.pc_range, self.align_corners)[..., 0]  # (R, P)
            out['ray_occupancy'] = (occupancy, targets, valid)
        if self.losses.point_semantics is not None:
            out['point_semantics'] = trilinear_lookup(
                semantics_vol, semantics_slots, points_at(batch.depth[:, None]), self.pc_range,
                self.align_corners)[:, 0]  # (R, K)
        return out

    def loss(self, preds: dict[str, Tensor], rays: Sequence[LidarRays]) -> dict[str, Tensor]:
        """Class-weighted render losses of the rendered rays (:class:`RenderLosses`).

        Args:
            preds: output of :meth:`forward`.
            rays: the B samples' rays, as in forward.

        Returns:
            ``loss_render_depth`` and ``loss_render_semantics`` scalars, and the optional
            terms configured (:meth:`RenderLosses.forward`).
        """
        return self.losses(preds, rays)
