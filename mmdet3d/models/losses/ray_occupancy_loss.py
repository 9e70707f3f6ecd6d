"""A direct occupancy target along each LiDAR ray: free before the return, occupied at it.

The render losses ask only that a ray's *accumulated* depth and class match; many fields do
that, among them hazy, part-transparent ones (docs/training_diagnostics.md). This loss adds the
LiDAR's own statement about space: the ray passed freely until ``free_margin`` before its return
and ended in an occupied voxel. It is a binary cross-entropy on the sigmoid density (before the
renderer's ``density_scale``) at ``num_free`` random points of the free stretch and at the hit
point ``hit_offset`` behind the return.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS


def ray_occupancy_samples(depth: Tensor, near: float, num_free: int, free_margin: float,
                          hit_offset: float, rand: Tensor | None = None
                          ) -> tuple[Tensor, Tensor, Tensor]:
    """Distances along each ray with their occupancy targets and validity.

    Args:
        depth: (R,) distance of each ray's LiDAR return, metres (along the unit ray).
        near: start of the free stretch, metres.
        num_free: free points per ray, drawn uniformly in [near, depth - free_margin].
        free_margin: metres before the return that are not asserted free (the surface's cell).
        hit_offset: metres behind the return of the occupied point (inside the surface's cell).
        rand: (R, num_free) uniform numbers in [0, 1) instead of ``torch.rand``. Defaults to None.

    Returns:
        distances (R, num_free + 1), targets (R, num_free + 1) float (0 free, 1 occupied; the hit
        point last) and valid (R, num_free + 1) bool (free points of rays whose free stretch is
        empty are not valid).
    """
    if rand is None:
        rand = torch.rand(len(depth), num_free, device=depth.device, dtype=depth.dtype)
    free_end = depth - free_margin  # (R,)
    free = near + rand * (free_end - near)[:, None]  # (R, num_free)
    distances = torch.cat([free, (depth + hit_offset)[:, None]], dim=1)
    targets = torch.zeros_like(distances)
    targets[:, -1] = 1.0
    valid = torch.ones_like(distances, dtype=torch.bool)
    valid[:, :-1] = (free_end > near)[:, None]
    return distances, targets, valid


@MODELS.register_module()
class RayOccupancyLoss(nn.Module):
    """``loss_weight x`` the mean BCE of the density at the free and hit points of the rays.

    Args:
        loss_weight: multiplier. Defaults to 0.1.
        num_free: free points per ray. Defaults to 8.
        free_margin: metres before the return not asserted free. Defaults to 1.0.
        hit_offset: metres behind the return of the occupied point. Defaults to 0.2.
        hit_weight: weight of the occupied point's term against a free point's. At cells
            coarser than the surfaces (a 0.8 m cell holding a car's edge), the rays passing
            through a cell that also holds returns outnumber the returns; > 1 keeps such cells
            occupied. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 0.1, num_free: int = 8, free_margin: float = 1.0,
                 hit_offset: float = 0.2, hit_weight: float = 1.0) -> None:
        super().__init__()
        if loss_weight < 0 or num_free < 0 or free_margin < 0 or hit_weight < 0:
            raise ValueError('RayOccupancyLoss: loss_weight, num_free, free_margin and '
                             f'hit_weight must be >= 0, got {loss_weight}, {num_free}, '
                             f'{free_margin}, {hit_weight}')
        self.loss_weight = loss_weight
        self.num_free = num_free
        self.free_margin = free_margin
        self.hit_offset = hit_offset
        self.hit_weight = hit_weight

    def samples(self, depth: Tensor, near: float, rand: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """:func:`ray_occupancy_samples` with this loss's settings."""
        return ray_occupancy_samples(depth, near, self.num_free, self.free_margin,
                                     self.hit_offset, rand)

    def forward(self, density: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            density: (R, P) sigmoid density at the sample points, in (0, 1).
            targets: (R, P) 0 (free) / 1 (occupied). valid: (R, P) bool.

        Returns:
            scalar loss (0 without a valid point).
        """
        if not bool(valid.any()):
            return density.sum() * 0.0
        # BCE on probabilities is unsafe under autocast: compute it in float32.
        target = targets[valid].float()
        weight = torch.where(target > 0.5, self.hit_weight, 1.0)
        with torch.autocast(device_type=density.device.type, enabled=False):
            loss = F.binary_cross_entropy(density[valid].float().clamp(1e-6, 1 - 1e-6),
                                          target, weight=weight)
        return self.loss_weight * loss
