"""Per-frame volumes stored as the shared volumes plus the voxels each frame changes.

The flow configs give every render frame its own volume pair, equal to the sample's prediction
except at the few voxels the occupancy flow moves. Copying the (B, Z, Y, X, C) prediction T
times holds T copies and their gradient in memory (docs/renderer.md); :class:`OverlaidVolumes`
keeps one row table -- the B shared volumes' voxels, then one row per changed (b, t, z, y, x) --
and a row index per virtual voxel of the (B*T, Z, Y, X) volumes. :func:`trilinear_lookup
<mmdet3d.models.rendering.grid_sampling.trilinear_lookup>` reads it like the dense (B*T, Z, Y,
X, C) tensor it stands for (the same values, so the same forward results).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class OverlaidVolumes:
    """V = B*T virtual volumes (frame-minor: volume b*T + t) of shape (Z, Y, X, C).

    Attributes:
        table: (B*Z*Y*X + M, C) the shared volumes' voxels, then the M changed voxels' values.
        rows: (V*Z*Y*X,) int32/int64 table row of each virtual voxel.
        shape: (V, Z, Y, X, C) of the dense tensor the volumes stand for.
    """

    table: Tensor
    rows: Tensor
    shape: tuple[int, int, int, int, int]

    @classmethod
    def overlay(cls, volumes: Tensor, num_frames: int, keys: Tensor,
                values: Tensor) -> OverlaidVolumes:
        """Repeat ``volumes`` per frame and replace the voxels at ``keys``.

        Args:
            volumes: (B, Z, Y, X, C) shared by every frame of a sample.
            num_frames: T frames per sample.
            keys: (M,) distinct flat indices into (B, T, Z, Y, X) of the changed voxels.
            values: (M, C) their values.
        """
        batch, size_z, size_y, size_x, channels = volumes.shape
        per_volume = size_z * size_y * size_x
        num_virtual = batch * num_frames * per_volume
        index_dtype = torch.int32 if num_virtual + len(keys) < 2**31 else torch.long
        shared_rows = torch.arange(batch * per_volume, dtype=index_dtype, device=volumes.device)
        rows = shared_rows.view(batch, 1, per_volume).expand(batch, num_frames, per_volume)
        rows = rows.reshape(num_virtual)  # a copy: written below
        rows[keys] = torch.arange(batch * per_volume, batch * per_volume + len(keys),
                                  dtype=index_dtype, device=volumes.device)
        table = torch.cat([volumes.reshape(-1, channels), values.to(volumes.dtype)])
        return cls(table, rows, (batch * num_frames, size_z, size_y, size_x, channels))

    def dense(self) -> Tensor:
        """The (V, Z, Y, X, C) tensor the volumes stand for (tests, inspection)."""
        return self.table[self.rows].view(self.shape)
