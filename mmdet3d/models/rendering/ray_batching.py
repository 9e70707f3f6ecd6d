"""Flatten the rays of a batch and choose the rays rendered this iteration (spec 3.2 steps 2, 4).

One random permutation over all rays of the B samples; the first ``rays_batch_size`` are used.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from mmdet3d.structures.lidar_rays import LidarRays


@dataclass
class RayBatch:
    """Rays in the flattened order of the batch (sample-major, then the per-sample order).

    Attributes:
        batch_idx: (R,) sample index b.
        frame_idx: (R,) render-frame index t (0..T-1).
        cam_idx: (R,) camera index.
        origins: (R, 3) ray origins, metres, key ego frame.
        directions: (R, 3) unit ray directions.
        depth: (R,) GT depth, metres.
        labels: (R,) int64 GT classes.
    """

    batch_idx: Tensor
    frame_idx: Tensor
    cam_idx: Tensor
    origins: Tensor
    directions: Tensor
    depth: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.batch_idx)

    def select(self, indices: Tensor) -> RayBatch:
        """The rays at ``indices`` (R',)."""
        return RayBatch(*(getattr(self, f.name)[indices] for f in fields(self)))


def flatten_rays(rays: Sequence[LidarRays]) -> RayBatch:
    """Concatenate the per-sample rays of a batch.

    Args:
        rays: B samples' rays; origins, directions and depth take the dtype and device of the
            first sample's origins.

    Returns:
        the flattened :class:`RayBatch` of R_tot = sum_b R_b rays.
    """
    device, dtype = rays[0].origins.device, rays[0].origins.dtype
    frame_cam = torch.cat([sample.frame_cam.to(device).long() for sample in rays])  # (R_tot, 2)
    batch_idx = torch.cat([torch.full((len(sample),), b, dtype=torch.long, device=device)
                           for b, sample in enumerate(rays)])
    return RayBatch(
        batch_idx=batch_idx,
        frame_idx=frame_cam[:, 0],
        cam_idx=frame_cam[:, 1],
        origins=torch.cat([sample.ray_origins() for sample in rays]).to(device, dtype),
        directions=torch.cat([sample.directions for sample in rays]).to(device, dtype),
        depth=torch.cat([sample.depth for sample in rays]).to(device, dtype),
        labels=torch.cat([sample.labels for sample in rays]).to(device).long())


def select_ray_indices(num_rays: int,
                       rays_batch_size: int,
                       perm: Tensor | None = None,
                       device: torch.device | str | None = None) -> Tensor:
    """Indices of the rays rendered this iteration: the first ``rays_batch_size`` of a random
    permutation (all rays, permuted, if there are fewer).

    Args:
        num_rays: R_tot.
        rays_batch_size: rays per batch (32768 in the configs).
        perm: (R_tot,) permutation to use instead of torch.randperm. Defaults to None.
        device: device of the drawn permutation. Defaults to None.

    Returns:
        (min(R_tot, rays_batch_size),) int64 indices into the flattened rays.
    """
    if perm is None:
        perm = torch.randperm(num_rays, device=device)
    elif perm.shape != (num_rays,):
        raise ValueError(f'perm must have shape ({num_rays},), got {tuple(perm.shape)}')
    return perm[:rays_batch_size].long()
