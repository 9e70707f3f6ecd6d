"""CustomResNet3D voxel encoder: stages of 3-D basic blocks (spec 2.8)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.utils.checkpoint as cp
from torch import nn

from mmdet3d.models.layers.basic_block3d import BasicBlock3D
from mmdet3d.registry import MODELS


@MODELS.register_module()
class CustomResNet3D(nn.Module):
    """Stages of BasicBlock3D; the first block of each stage has the downsample branch.

    Keys ``layers.{stage}.{block}.*``. Used both as ``pre_process_net`` (one stage) and as the
    BEV encoder backbone (three stages).

    Args:
        numC_input: input channels.
        num_layer: blocks per stage. Defaults to (2, 2, 2).
        num_channels: channels per stage; None means ``numC_input * 2**(i + 1)``.
            Defaults to None.
        stride: stride of each stage's first block. Defaults to (2, 2, 2).
        backbone_output_ids: stages whose output is returned; None means all.
            Defaults to None.
        with_cp: gradient-checkpoint every stage. Defaults to False.
    """

    def __init__(self,
                 numC_input: int,  # noqa: N803 (the original argument name)
                 num_layer: Sequence[int] = (2, 2, 2),
                 num_channels: Sequence[int] | None = None,
                 stride: Sequence[int] = (2, 2, 2),
                 backbone_output_ids: Sequence[int] | None = None,
                 with_cp: bool = False) -> None:
        super().__init__()
        if len(num_layer) != len(stride):
            raise ValueError('num_layer and stride must have the same length')
        if num_channels is None:
            num_channels = [numC_input * 2**(i + 1) for i in range(len(num_layer))]
        self.backbone_output_ids = tuple(
            range(len(num_layer)) if backbone_output_ids is None else backbone_output_ids)
        self.with_cp = with_cp
        stages = []
        channels = numC_input
        for n, c, s in zip(num_layer, num_channels, stride):
            blocks = [BasicBlock3D(channels, c, stride=s, with_downsample=True)]
            blocks += [BasicBlock3D(c, c) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = c
        self.layers = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encode a voxel volume.

        Args:
            x: (B, numC_input, Z, Y, X).

        Returns:
            For each stage i in ``backbone_output_ids``: (B, num_channels[i], Z / s_i, Y / s_i,
            X / s_i), s_i the cumulative stride.
        """
        feats = []
        for i, stage in enumerate(self.layers):
            if self.with_cp and x.requires_grad and torch.is_grad_enabled():
                x = cp.checkpoint(stage, x, use_reentrant=False)
            else:
                x = stage(x)
            if i in self.backbone_output_ids:
                feats.append(x)
        return feats
