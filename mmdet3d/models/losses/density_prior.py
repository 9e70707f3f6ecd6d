"""A sparsity prior on the density field: space that no ray or label constrains tends to free."""
from __future__ import annotations

from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class DensitySparsityLoss(nn.Module):
    """``loss_weight x`` the mean sigmoid density over all voxels (an L1 prior towards free).

    Rendering supervises only the voxels that LiDAR rays cross; elsewhere the density keeps
    whatever the network's initialisation and generalisation give it. This prior pulls every
    voxel towards free with a small constant force, which the render losses outweigh where rays
    pass (a surface is kept if it explains its rays better than its share of this mean costs).

    Args:
        loss_weight: multiplier. Defaults to 0.1.
    """

    def __init__(self, loss_weight: float = 0.1) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        self.loss_weight = loss_weight

    def forward(self, density: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            density: (B, Z, Y, X, 1) sigmoid density in (0, 1).

        Returns:
            scalar loss.
        """
        return self.loss_weight * density.float().mean()
