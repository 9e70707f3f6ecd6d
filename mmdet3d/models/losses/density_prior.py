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

    With ``observed_weight`` the pull depends on the sample's rays: ``loss_weight`` on the voxels
    that no LiDAR ray of the sample crosses or ends in (unobserved: nothing but the prior decides
    them), ``observed_weight`` on the others (where the render losses decide); the detector passes
    the ``observed`` mask (``mmdet3d.structures.voxel_grids.ray_coverage``).

    Args:
        loss_weight: multiplier (of the unobserved voxels with ``observed_weight``).
            Defaults to 0.1.
        observed_weight: multiplier of the observed voxels; None: one weight everywhere.
            Defaults to None.
    """

    def __init__(self, loss_weight: float = 0.1, observed_weight: float | None = None) -> None:
        super().__init__()
        if loss_weight < 0 or (observed_weight is not None and observed_weight < 0):
            raise ValueError(f'loss_weight and observed_weight must be >= 0, got {loss_weight} '
                             f'and {observed_weight}')
        self.loss_weight = loss_weight
        self.observed_weight = observed_weight

    @property
    def uses_coverage(self) -> bool:
        """Whether :meth:`forward` needs the ``observed`` mask."""
        return self.observed_weight is not None

    def forward(self, density: Tensor, observed: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            density: (B, Z, Y, X, 1) sigmoid density in (0, 1).
            observed: (B, Z, Y, X) bool, voxels a ray of the sample crosses or ends in; needed
                with ``observed_weight``. Defaults to None.

        Returns:
            scalar: the mean over all voxels of the weighted density.
        """
        density = density.float()
        if not self.uses_coverage:
            return self.loss_weight * density.mean()
        if observed is None or observed.shape != density.shape[:-1]:
            raise ValueError('DensitySparsityLoss with observed_weight needs the observed mask '
                             f'{tuple(density.shape[:-1])}, got '
                             f'{None if observed is None else tuple(observed.shape)}')
        weights = observed.float() * (self.observed_weight - self.loss_weight) + self.loss_weight
        return (weights * density[..., 0]).mean()
