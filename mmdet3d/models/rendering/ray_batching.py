"""Flatten the rays of a batch and choose the rays rendered this iteration (spec 3.2 steps 2, 4).

One random permutation over all rays of the B samples; the first ``rays_batch_size`` are used.
``OccFlowNet.select_rays`` does both, once per training iteration.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mmdet3d.structures.lidar_rays import LidarRays


def flatten_rays(rays: Sequence[LidarRays]) -> LidarRays:
    """Concatenate the per-sample rays of a batch into one :class:`LidarRays`.

    Args:
        rays: B samples' rays; origins, directions and depth take the dtype and device of the
            first sample's origins, frame_cam and labels become int64.

    Returns:
        the R_tot = sum_b R_b rays in sample-major order, each sample's in its own order, with
        ``batch_idx`` (R_tot,) and the (B, T, N, 3) table of the samples' camera centres
        (zero-padded where samples have fewer frames or cameras than others); ``pixels`` where
        every sample has them.
    """
    device, dtype = rays[0].origins.device, rays[0].origins.dtype
    num_frames = max(sample.origins.shape[0] for sample in rays)
    num_cams = max(sample.origins.shape[1] for sample in rays)
    origins = torch.zeros(len(rays), num_frames, num_cams, 3, device=device, dtype=dtype)
    for b, sample in enumerate(rays):
        frames, cams = sample.origins.shape[:2]
        origins[b, :frames, :cams] = sample.origins.to(device, dtype)
    batch_idx = torch.cat([torch.full((len(sample),), b, dtype=torch.long, device=device)
                           for b, sample in enumerate(rays)])
    with_pixels = all(sample.pixels is not None for sample in rays)
    return LidarRays(
        origins=origins,
        directions=torch.cat([sample.directions for sample in rays]).to(device, dtype),
        frame_cam=torch.cat([sample.frame_cam.to(device).long() for sample in rays]),
        depth=torch.cat([sample.depth for sample in rays]).to(device, dtype),
        labels=torch.cat([sample.labels for sample in rays]).to(device).long(),
        pixels=(torch.cat([sample.pixels for sample in rays]).to(device).long()
                if with_pixels else None),
        batch_idx=batch_idx)


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
