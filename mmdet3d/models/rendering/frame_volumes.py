"""Which volume each render frame's rays read: one strategy per renderer variant (spec 3.2 step 3).

- :class:`SharedVolumes`: every frame reads the sample's predicted volumes (no filter, no flow).
- :class:`StaticFilterVolumes` (``_2d``): the current frame reads the full density, the other
  frames a static density in which the voxels of the dynamic classes are transparent.
- :class:`FlowVolumes` (``_2d_flow``): one volume pair per frame, the dynamic voxels moved by
  the occupancy flow (``warp_by_flow``; stored as :class:`OverlaidVolumes`, not as T copies).

Volumes are (V, Z, Y, X, C) (dense or overlaid); :meth:`slots` gives each ray's volume index in
them.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .flow_warping import create_static_density, warp_by_flow
from .overlaid_volumes import OverlaidVolumes


class SharedVolumes(nn.Module):
    """Every render frame reads its sample's volumes."""

    def forward(self, density: Tensor, semantics: Tensor,
                voxel_flow: list[Tensor] | None) -> tuple[Tensor, Tensor]:
        """Density (B, Z, Y, X, 1) and semantics (B, Z, Y, X, K) -> the volumes rays read."""
        return density, semantics

    def slots(self, batch_idx: Tensor, frame_idx: Tensor) -> tuple[Tensor, Tensor]:
        """(R,) density and semantics volume index of each ray."""
        return batch_idx, batch_idx


class StaticFilterVolumes(nn.Module):
    """The current frame reads the full density, the others the static one (``_2d``).

    Args:
        ignore_classes: the dynamic classes made transparent in the other frames.
        current_timestep: index of the current frame among the render frames.
    """

    def __init__(self, ignore_classes: Sequence[int], current_timestep: int) -> None:
        super().__init__()
        if not ignore_classes:
            raise ValueError('temporal_filter needs ignore_classes')
        self.register_buffer('ignore_classes',
                             torch.tensor(list(ignore_classes), dtype=torch.long),
                             persistent=False)
        self.current_timestep = current_timestep

    def forward(self, density: Tensor, semantics: Tensor,
                voxel_flow: list[Tensor] | None) -> tuple[Tensor, Tensor]:
        """Density (B*2, Z, Y, X, 1) as (full, static) pairs; semantics (B, Z, Y, X, K)."""
        static = create_static_density(density, semantics, self.ignore_classes)
        return torch.stack([density, static], dim=1).flatten(0, 1), semantics

    def slots(self, batch_idx: Tensor, frame_idx: Tensor) -> tuple[Tensor, Tensor]:
        return 2 * batch_idx + (frame_idx != self.current_timestep).long(), batch_idx


class FlowVolumes(nn.Module):
    """One volume pair per render frame, dynamic voxels moved by the flow (``_2d_flow``).

    Args:
        num_frames: T render frames.
        class_filter: see :func:`apply_flow_clipped`. Defaults to True (the original).
    """

    def __init__(self, num_frames: int, class_filter: bool = True) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.class_filter = class_filter

    def forward(self, density: Tensor, semantics: Tensor,
                voxel_flow: list[Tensor] | None) -> tuple[OverlaidVolumes, OverlaidVolumes]:
        """Density (B*T, Z, Y, X, 1) and semantics (B*T, Z, Y, X, K), frame-minor."""
        if voxel_flow is None:
            raise ValueError("use_flow needs the flow rows (the data samples' gt_flow)")
        return warp_by_flow(density, semantics, voxel_flow, self.num_frames, self.class_filter)

    def slots(self, batch_idx: Tensor, frame_idx: Tensor) -> tuple[Tensor, Tensor]:
        slot = batch_idx * self.num_frames + frame_idx
        return slot, slot


def build_frame_volumes(temporal_filter: bool, use_flow: bool,
                        ignore_classes: Sequence[int] | None, num_frames: int,
                        current_timestep: int, flow_class_filter: bool = True) -> nn.Module:
    """The strategy of a renderer's ``temporal_filter`` / ``use_flow`` options.

    Raises:
        ValueError: both options set, or the filter without ``ignore_classes``.
    """
    if temporal_filter and use_flow:
        raise ValueError('temporal_filter and use_flow are exclusive')
    if use_flow:
        return FlowVolumes(num_frames, flow_class_filter)
    if temporal_filter:
        return StaticFilterVolumes(ignore_classes or [], current_timestep)
    return SharedVolumes()
