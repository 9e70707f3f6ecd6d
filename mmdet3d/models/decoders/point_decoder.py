"""Per-voxel MLP field decoder (spec 2.9)."""
from __future__ import annotations

import math

from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class PointDecoder(nn.Module):
    """MLP applied to the last dimension of a voxel feature volume.

    Layout of ``layers`` (state-dict keys ``layers.{0,3,6,9}`` for 3 hidden layers):
    ``[Linear, ReLU, Dropout] * num_hidden_layers + [Linear] (+ [Sigmoid])``.

    Args:
        in_channels: input feature width. Defaults to 64.
        embed_dims: hidden width. Defaults to 256.
        num_hidden_layers: number of Linear-ReLU-Dropout blocks. Defaults to 3.
        num_classes: output width (1 for density, 17 for semantics). Defaults to 1.
        final_act_cfg: ``dict(type='Sigmoid')`` or None (raw outputs). Defaults to None.
        dropout: dropout probability of the hidden blocks. Defaults to 0.0.
        init_prior_prob: where set, the output bias starts at ``log(p / (1 - p))``, so that an
            untrained decoder predicts probability ``p`` (prior-probability initialisation, as
            in focal-loss detectors); e.g. the occupied fraction for the density, so that space
            no ray constrains starts free. None: zero bias (the original). Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 64,
                 embed_dims: int = 256,
                 num_hidden_layers: int = 3,
                 num_classes: int = 1,
                 final_act_cfg: dict | None = None,
                 dropout: float = 0.0,
                 init_prior_prob: float | None = None) -> None:
        super().__init__()
        if init_prior_prob is not None and not 0.0 < init_prior_prob < 1.0:
            raise ValueError(f'init_prior_prob must lie in (0, 1), got {init_prior_prob}')
        self.init_prior_prob = init_prior_prob
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, embed_dims), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = embed_dims
        layers.append(nn.Linear(width, num_classes))
        if final_act_cfg is not None:
            if final_act_cfg.get('type') != 'Sigmoid' or len(final_act_cfg) != 1:
                raise ValueError(f'unsupported final_act_cfg {final_act_cfg}; use Sigmoid or None')
            layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform Linear weights, zero biases (the original's init_cfg); the output bias
        at the log-odds of ``init_prior_prob`` where set."""
        linears = [module for module in self.layers if isinstance(module, nn.Linear)]
        for module in linears:
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        if self.init_prior_prob is not None:
            p = self.init_prior_prob
            nn.init.constant_(linears[-1].bias, math.log(p / (1.0 - p)))

    def forward(self, feats: Tensor) -> Tensor:
        """Decode features.

        Args:
            feats: (..., in_channels), e.g. (B, X, Y, Z, C).

        Returns:
            (..., num_classes); in (0, 1) with the Sigmoid.
        """
        return self.layers(feats)


__all__ = ['PointDecoder']
