"""Flatten the rays of a batch and choose the rays rendered this iteration (spec 3.2 steps 2, 4).

One random permutation over all rays of the B samples; the first ``rays_batch_size`` are used.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


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


def flatten_rays(origins: Tensor, directions: list[Tensor],
                 ray_dataset: list[list[Tensor]]) -> RayBatch:
    """Concatenate the per-sample rays.

    Args:
        origins: (B, T, N, 3) camera centres per render frame and camera.
        directions: B tensors (R_b, 3), unit length.
        ray_dataset: B lists [idx (R_b, 2) (frame, cam), depth (R_b,), label (R_b,)].

    Returns:
        the flattened :class:`RayBatch` of R_tot = sum_b R_b rays.
    """
    device = origins.device
    idx = torch.cat([rays[0].to(device).long() for rays in ray_dataset])  # (R_tot, 2)
    batch_idx = torch.cat([torch.full((len(rays[0]),), b, dtype=torch.long, device=device)
                           for b, rays in enumerate(ray_dataset)])
    frame_idx, cam_idx = idx[:, 0], idx[:, 1]
    return RayBatch(
        batch_idx=batch_idx,
        frame_idx=frame_idx,
        cam_idx=cam_idx,
        origins=origins[batch_idx, frame_idx, cam_idx],
        directions=torch.cat(list(directions)).to(device=device, dtype=origins.dtype),
        depth=torch.cat([rays[1] for rays in ray_dataset]).to(device=device,
                                                              dtype=origins.dtype),
        labels=torch.cat([rays[2] for rays in ray_dataset]).to(device).long())


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
