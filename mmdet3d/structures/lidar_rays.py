"""``LidarRays``: the LiDAR-supervised camera rays of one sample, read by name (spec 4.3.5).

``GenerateRays`` builds one ray per (render frame, camera, visible LiDAR point) in the key
frame's LiDAR-timestamp ego frame, with the BEV augmentation applied. A batch is a list of B
``LidarRays`` (R differs per sample); the renderer flattens it (``flatten_rays``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LidarRays:
    """R rays of one sample over T render frames and N cameras.

    Attributes:
        origins: (T, N, 3) float32 camera centres, metres.
        directions: (R, 3) float32 unit ray directions.
        frame_cam: (R, 2) int64 (render-frame index 0..T-1, camera index) of each ray.
        depth: (R,) float32 GT depth, metres (camera z-depth, or the range along the ray with
            ``depth_along_ray``).
        labels: (R,) int64 Occ3D class 0..16 of the LiDAR point.
        pixels: (R, 2) int64 floor of the augmented pixel (u', v'); None where not recorded.
    """

    origins: Tensor
    directions: Tensor
    frame_cam: Tensor
    depth: Tensor
    labels: Tensor
    pixels: Tensor | None = None

    def __len__(self) -> int:
        return len(self.depth)

    @property
    def frame_idx(self) -> Tensor:
        """(R,) render-frame index of each ray."""
        return self.frame_cam[:, 0]

    @property
    def cam_idx(self) -> Tensor:
        """(R,) camera index of each ray."""
        return self.frame_cam[:, 1]

    def ray_origins(self) -> Tensor:
        """(R, 3) origin of each ray: its camera's centre in its render frame."""
        return self.origins[self.frame_idx.long(), self.cam_idx.long()]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           non_blocking: bool = False) -> LidarRays:
        """Every tensor moved to ``device``; the floating ones also cast to ``dtype``."""
        def move(value: Tensor | None) -> Tensor | None:
            if value is None:
                return None
            return value.to(device=device, dtype=dtype if value.is_floating_point() else None,
                            non_blocking=non_blocking)
        return LidarRays(**{field.name: move(getattr(self, field.name))
                            for field in dataclasses.fields(self)})

    def select(self, indices: Tensor) -> LidarRays:
        """The rays at ``indices`` (R',) (the origins table is kept whole)."""
        return dataclasses.replace(
            self, directions=self.directions[indices], frame_cam=self.frame_cam[indices],
            depth=self.depth[indices], labels=self.labels[indices],
            pixels=None if self.pixels is None else self.pixels[indices])

