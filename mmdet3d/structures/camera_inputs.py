"""``CameraInputs``: the camera tensors of a sample or a batch, read by name (spec 2.3, 4.3.1).

N cameras and F frames (t, t-1, t-2 for OccFlowNet). Images are camera-major ([cam0: t, t-1,
..., cam1: ...]); the per-view transforms are frame-major ([t: cam0, cam1, ..., t-1: ...]).
A sample's tensors have no batch dimension; :meth:`CameraInputs.stack` adds a leading B.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CameraInputs:
    """Camera images, calibration, image augmentation and BEV augmentation.

    Attributes:
        imgs: (..., N*F, 3, H, W) float32 normalised images, camera-major.
        sensor2egos: (..., N*F, 4, 4) camera -> camera-ego, frame-major.
        ego2globals: (..., N*F, 4, 4) camera-ego -> global, frame-major.
        intrins: (..., N*F, 3, 3) camera intrinsics.
        post_rots: (..., N*F, 3, 3) image augmentation (rotation/scale part, z row identity).
        post_trans: (..., N*F, 3) image augmentation (translation, z = 0).
        bda: (..., 3, 3) BEV augmentation (flips, rotation, scale) of the key ego frame; None
            until ``LoadAnnotationsBEVDepth`` samples it.
    """

    imgs: Tensor
    sensor2egos: Tensor
    ego2globals: Tensor
    intrins: Tensor
    post_rots: Tensor
    post_trans: Tensor
    bda: Tensor | None = None

    def to(self, *args, **kwargs) -> CameraInputs:
        """Every tensor moved/cast with ``Tensor.to(*args, **kwargs)``."""
        return CameraInputs(**{name: None if value is None else value.to(*args, **kwargs)
                               for name, value in self._items()})

    def with_bda(self, bda: Tensor) -> CameraInputs:
        """A copy with the BEV augmentation set."""
        return dataclasses.replace(self, bda=bda)

    @classmethod
    def stack(cls, samples: Sequence[CameraInputs]) -> CameraInputs:
        """Stack per-sample inputs along a new leading batch dimension.

        Raises:
            ValueError: if some samples have a ``bda`` and others not.
        """
        if not samples:
            raise ValueError('CameraInputs.stack needs at least one sample')
        with_bda = {sample.bda is not None for sample in samples}
        if len(with_bda) > 1:
            raise ValueError('CameraInputs.stack: some samples have a bda and others not')
        columns = {name: [getattr(sample, name) for sample in samples] for name in cls._names()}
        return cls(**{name: None if items[0] is None else torch.stack(items)
                      for name, items in columns.items()})

    def unstack(self) -> list[CameraInputs]:
        """The per-sample inputs of a batch (the inverse of :meth:`stack`)."""
        columns = {name: [None] * len(self.imgs) if value is None else value.unbind(0)
                   for name, value in self._items()}
        return [CameraInputs(**{name: items[b] for name, items in columns.items()})
                for b in range(len(self.imgs))]

    @property
    def num_views(self) -> int:
        """N*F, the number of (camera, frame) views."""
        return int(self.imgs.shape[-4])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return int(self.imgs.shape[-2]), int(self.imgs.shape[-1])

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    def _items(self) -> list[tuple[str, Tensor | None]]:
        return [(name, getattr(self, name)) for name in self._names()]
