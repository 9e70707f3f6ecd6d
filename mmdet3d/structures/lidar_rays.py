"""``LidarRays``: LiDAR-supervised camera rays, read by name (spec 4.3.5).

``GenerateRays`` builds one ray per (render frame, camera, visible LiDAR point) in the key
frame's LiDAR-timestamp ego frame, with the BEV augmentation applied: the rays of one sample. A
batch is a list of B of them (R differs per sample); ``flatten_rays``
(``mmdet3d.models.rendering.ray_batching``) concatenates it into one ``LidarRays`` whose rays
carry their sample index (``batch_idx``), which the model subsets (:meth:`LidarRays.select`)
and renders.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LidarRays:
    """R rays over T render frames and N cameras, of one sample or of a flattened batch.

    Attributes:
        origins: (T, N, 3) float32 camera centres of one sample, metres; (B, T, N, 3) for a
            flattened batch (``batch_idx`` set).
        directions: (R, 3) float32 unit ray directions.
        frame_cam: (R, 2) int64 (render-frame index 0..T-1, camera index) of each ray.
        depth: (R,) float32 GT depth, metres (camera z-depth, or the range along the ray with
            ``depth_along_ray``).
        labels: (R,) int64 Occ3D class 0..16 of the LiDAR point.
        pixels: (R, 2) int64 floor of the augmented pixel (u', v'); None where not recorded.
        batch_idx: (R,) int64 sample index b of each ray of a flattened batch; None: the rays
            of one sample.
    """

    origins: Tensor
    directions: Tensor
    frame_cam: Tensor
    depth: Tensor
    labels: Tensor
    pixels: Tensor | None = None
    batch_idx: Tensor | None = None

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

    def sample_idx(self) -> Tensor:
        """(R,) int64 sample index of each ray (``batch_idx``; 0 for the rays of one sample)."""
        if self.batch_idx is not None:
            return self.batch_idx.long()
        return torch.zeros(len(self), dtype=torch.long, device=self.frame_cam.device)

    def ray_origins(self) -> Tensor:
        """(R, 3) origin of each ray: its camera's centre in its render frame."""
        frame, cam = self.frame_idx.long(), self.cam_idx.long()
        if self.batch_idx is None:
            return self.origins[frame, cam]
        return self.origins[self.batch_idx.long(), frame, cam]

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
        def pick(value: Tensor | None) -> Tensor | None:
            return None if value is None else value[indices]
        return dataclasses.replace(
            self, directions=self.directions[indices], frame_cam=self.frame_cam[indices],
            depth=self.depth[indices], labels=self.labels[indices], pixels=pick(self.pixels),
            batch_idx=pick(self.batch_idx))
