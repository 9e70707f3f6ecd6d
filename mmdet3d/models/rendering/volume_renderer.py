"""``VolumeRenderer``: predicted volumes rendered along LiDAR rays (spec 3).

frame volumes (``frame_volumes``: shared / static filter / flow) -> samples along each given ray
(``ray_samplers``) -> volume lookup (``grid_sampling``) -> weights and accumulation
(``volume_rendering``). The renderer is stateless with respect to the losses: it renders the
rays it is given (``OccFlowNet.select_rays`` chooses them) and returns :class:`RenderedRays`;
``OccFlowNet.render_losses`` computes the losses from them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from mmdet3d.registry import MODELS
from mmdet3d.structures.lidar_rays import LidarRays
from mmdet3d.structures.occ_geometry import OccGeometry

from .frame_volumes import build_frame_volumes
from .grid_sampling import trilinear_lookup
from .overlaid_volumes import OverlaidVolumes
from .ray_samplers import sample_along_rays
from .volume_rendering import (IMPLS, accumulate_along_rays, interval_midpoints,
                               weights_from_density)


@dataclass
class RayVolumes:
    """The (warped, per-frame) volumes as R rendered rays see them: each ray reads its own
    sample's and frame's volume (``slots``) at distances along itself.

    Attributes:
        density: (V, Z, Y, X, 1) sigmoid density volumes (dense or overlaid).
        semantics: (V', Z, Y, X, K) logit volumes (dense or overlaid).
        density_slots, semantics_slots: (R,) volume index of each ray.
        origins, directions: (R, 3) ray origins (metres) and unit directions.
        pc_range: metric extent of the volumes (6,).
        align_corners: lookup convention (``trilinear_lookup``).
    """

    density: Tensor | OverlaidVolumes
    semantics: Tensor | OverlaidVolumes
    density_slots: Tensor
    semantics_slots: Tensor
    origins: Tensor
    directions: Tensor
    pc_range: Sequence[float]
    align_corners: bool

    def points_at(self, distances: Tensor) -> Tensor:
        """(R, S) distances along the rays -> (R, S, 3) metric points."""
        return self.origins[:, None] + distances[..., None] * self.directions[:, None]

    def density_at(self, distances: Tensor) -> Tensor:
        """(R, S) distances -> (R, S) sigmoid density (before the renderer's ``density_scale``)."""
        return trilinear_lookup(self.density, self.density_slots, self.points_at(distances),
                                self.pc_range, self.align_corners)[..., 0]

    def semantics_at(self, distances: Tensor) -> Tensor:
        """(R, S) distances -> (R, S, K) logits."""
        return trilinear_lookup(self.semantics, self.semantics_slots, self.points_at(distances),
                                self.pc_range, self.align_corners)


@dataclass
class RenderedRays:
    """What :class:`VolumeRenderer` rendered for the R rays it was given, in their order.

    Attributes:
        depth: (R, 1) rendered distance along the unit ray, metres.
        semantics: (R, K) accumulated logits.
        weights: (R, S) render weights of the final samples.
        starts, ends: (R, S) their intervals along the rays, metres (no grad).
        volumes: the volumes the rays read, for lookups at other distances
            (:meth:`density_at`, :meth:`semantics_at`).
    """

    depth: Tensor
    semantics: Tensor
    weights: Tensor
    starts: Tensor
    ends: Tensor
    volumes: RayVolumes

    def __len__(self) -> int:
        return len(self.depth)

    def density_at(self, distances: Tensor) -> Tensor:
        """(R, P) distances along the rendered rays -> (R, P) sigmoid density of the volumes
        they read (e.g. ``RayOccupancyLoss``'s free and hit points)."""
        return self.volumes.density_at(distances)

    def semantics_at(self, distances: Tensor) -> Tensor:
        """(R, P) distances along the rendered rays -> (R, P, K) logits of the volumes they read
        (e.g. at the LiDAR returns)."""
        return self.volumes.semantics_at(distances)


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
        temporal_filter: ``_2d``: non-current frames see the static density. Defaults to False.
        ignore_classes: classes made transparent by the filter. Defaults to None.
        use_flow: flow configs: per-frame volumes from ``apply_flow_clipped``. Defaults to False.
        flow_class_filter: with ``use_flow``, move only the voxels predicted as the flow row's
            class (the original, quirk 11); False moves every row. Defaults to True.
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
                 temporal_filter: bool = False,
                 ignore_classes: Sequence[int] | None = None,
                 use_flow: bool = False,
                 flow_class_filter: bool = True,
                 density_scale: float = 1.0,
                 render_impl: str = 'auto') -> None:
        super().__init__()
        if render_impl not in IMPLS:
            raise ValueError(f'render_impl must be one of {IMPLS}, got {render_impl!r}')
        if density_scale <= 0:
            raise ValueError(f'density_scale must be positive, got {density_scale}')
        self.geometry = OccGeometry.build(geometry)
        self.pc_range = self.geometry.model_grid.pc_range
        self.grid_size = self.geometry.model_grid.shape
        self.near, self.far = (float(v) for v in render_range)
        self.samples_per_ray = samples_per_ray
        self.prop_samples_per_ray = prop_samples_per_ray
        self.use_proposal = use_proposal
        self.render_frame_ids = self.geometry.render_frame_ids
        self.num_frames = len(self.render_frame_ids)
        self.current_timestep = self.render_frame_ids.index(0)
        self.align_corners = self.geometry.align_corners
        self.density_scale = float(density_scale)
        self.render_impl = render_impl
        self.frame_volumes = build_frame_volumes(temporal_filter, use_flow, ignore_classes,
                                                 self.num_frames, self.current_timestep,
                                                 flow_class_filter)

    def forward(self,
                density: Tensor,
                semantics: Tensor,
                rays: LidarRays,
                voxel_flow: list[Tensor] | None = None,
                *,
                jitter_rand: Tensor | None = None) -> RenderedRays:
        """Render the given rays.

        Args:
            density: (B, Z, Y, X, 1) sigmoid density; sigma = density_scale * density in 1/m.
            semantics: (B, Z, Y, X, K) logits.
            rays: the R rays to render (key ego frame, after BDA): a flattened batch
                (``flatten_rays``, each ray's sample in ``batch_idx``, e.g. the training rays of
                ``OccFlowNet.select_rays``) or the rays of one sample (B = 1).
            voxel_flow: B tensors (F_b, 11) for ``use_flow``, in the model grid's indices and
                the BEV-augmented frame (``LoadAnnotationsBEVDepth``). Defaults to None.
            jitter_rand: (R, S_uniform - 1) uniform numbers of the uniform pass instead of
                torch.rand. Defaults to None.

        Returns:
            :class:`RenderedRays`: depth (R, 1) metres and semantics (R, K) of every given ray
            in the given order, the weights and intervals of its samples and lookups into the
            volumes it read.
        """
        if tuple(density.shape[1:4]) != self.grid_size[::-1]:
            raise ValueError(f'volume (Z, Y, X) {tuple(density.shape[1:4])} does not match '
                             f'grid_size (X, Y, Z) {self.grid_size}')
        density_vol, semantics_vol = self.frame_volumes(density, semantics, voxel_flow)
        density_slots, semantics_slots = self.frame_volumes.slots(rays.sample_idx(),
                                                                  rays.frame_idx.long())
        origins = rays.ray_origins()
        volumes = RayVolumes(density_vol, semantics_vol, density_slots, semantics_slots,
                             origins, rays.directions.to(origins.dtype), self.pc_range,
                             self.align_corners)

        def sigma_at(distances: Tensor) -> Tensor:
            """(R, S) distances -> (R, S) sigma in 1/m."""
            return self.density_scale * volumes.density_at(distances)

        starts, ends, centres = sample_along_rays(
            sigma_at, len(rays), self.near, self.far, self.samples_per_ray,
            self.prop_samples_per_ray, self.use_proposal, jitter_rand, self.render_impl,
            origins.device, origins.dtype)
        weights, _, _ = weights_from_density(starts, ends, sigma_at(centres), self.render_impl)
        depth = accumulate_along_rays(weights, interval_midpoints(starts, ends),
                                      self.render_impl)  # (R, 1)
        logits = volumes.semantics_at(centres)  # (R, S, K)
        sem = accumulate_along_rays(weights, logits, self.render_impl)  # (R, K)
        return RenderedRays(depth=depth, semantics=sem, weights=weights, starts=starts,
                            ends=ends, volumes=volumes)
