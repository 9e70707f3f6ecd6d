"""Per-render-frame volumes: static-density filter (``_2d``) and occupancy-flow voxel moving.

Spec 3.2 step 3 and 3.5.1. Volumes are (B, Z, Y, X, C); flow indices are (z, y, x). The flow
rows arrive in the BEV-augmented frame (``LoadAnnotationsBEVDepth`` flips them with the rest of
the ground truth) and are brought to the model grid (:func:`downsample_flow`) here.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmdet3d.structures.occ3d import FLOW_CLASS, FLOW_FRAME, FLOW_SRC, FLOW_TGT

from .overlaid_volumes import OverlaidVolumes


def create_static_density(density: Tensor, semantics: Tensor, ignore_classes: Tensor) -> Tensor:
    """Density with 0 at voxels whose argmax class is dynamic (non-differentiable mask).

    Args:
        density: (B, Z, Y, X, 1).
        semantics: (B, Z, Y, X, K) logits.
        ignore_classes: (n,) int classes made transparent.

    Returns:
        (B, Z, Y, X, 1) static density.
    """
    pred = semantics.argmax(dim=-1)  # (B, Z, Y, X)
    dynamic = torch.isin(pred, ignore_classes.to(pred.device))
    return density.masked_fill(dynamic[..., None], 0.0)


def downsample_flow(voxel_flow: list[Tensor], factors: tuple[int, int, int]) -> list[Tensor]:
    """Flow rows in Occ3D voxel indices -> indices of a model grid ``factors`` times coarser.

    Args:
        voxel_flow: B tensors (F_b, 11) (src | target | floor (z, y, x) | class | frame).
        factors: per-axis (X, Y, Z) factors from the model grid to the rows' grid.

    Returns:
        the rows with their (z, y, x) columns divided (floor) by the factors; the given list
        when every factor is 1.
    """
    fx, fy, fz = factors
    if (fx, fy, fz) == (1, 1, 1):
        return voxel_flow
    out = []
    for rows in voxel_flow:
        divisors = torch.tensor([fz, fy, fx] * 3 + [1, 1], device=rows.device)
        out.append(torch.div(rows.long(), divisors, rounding_mode='floor').to(rows.dtype))
    return out


def warp_by_flow(density: Tensor,
                 semantics: Tensor,
                 voxel_flow: list[Tensor],
                 num_frames: int,
                 class_filter: bool = True) -> tuple[OverlaidVolumes, OverlaidVolumes]:
    """Move predicted dynamic voxels into one volume per render frame (original
    ``apply_flow_clipped``).

    Every frame starts as the current prediction. Rows whose source voxel's argmax class equals
    the row's class are kept (quirk 11; every row with ``class_filter=False``); their source is
    zeroed in the row's frame, and each unique target (b, t, z, y, x) is overwritten by the mean
    of its sources' values (quirk 10). Values keep their gradient. The frames are not copied:
    only the changed voxels are stored (:class:`OverlaidVolumes`).

    Args:
        density: (B, Z, Y, X, 1).
        semantics: (B, Z, Y, X, K) logits.
        voxel_flow: B tensors (F_b, 11) uint8/int rows (see FLOW_* columns) of the volumes'
            grid, in the BEV-augmented frame.
        num_frames: T render frames.
        class_filter: move only the rows whose source voxel is predicted as the row's class
            (the original). With it, a voxel the model does not yet call the object's class
            stays in place, and the other frames' rays on the moving object push the object
            towards its position in their frame: the model paints the object along its track.
            False moves every row (the rows come from the GT boxes). Defaults to True.

    Returns:
        density (B*T, Z, Y, X, 1) and semantics (B*T, Z, Y, X, K) volumes, frame-minor. Always
        a pair, also when nothing moves (the original returned a 3-tuple there).
    """
    batch, size_z, size_y, size_x, _ = density.shape
    device = density.device
    rows = torch.cat([f.to(device=device, dtype=torch.long).reshape(-1, 11) for f in voxel_flow])
    batch_idx = torch.cat([torch.full((len(f),), b, dtype=torch.long, device=device)
                           for b, f in enumerate(voxel_flow)])
    if class_filter and len(rows):
        src_z, src_y, src_x = rows[:, FLOW_SRC].unbind(dim=1)
        pred = semantics.detach().argmax(dim=-1)  # (B, Z, Y, X)
        keep = pred[batch_idx, src_z, src_y, src_x] == rows[:, FLOW_CLASS]
        rows, batch_idx = rows[keep], batch_idx[keep]
    src_z, src_y, src_x = rows[:, FLOW_SRC].unbind(dim=1)
    tgt_z, tgt_y, tgt_x = rows[:, FLOW_TGT].unbind(dim=1)
    frame = rows[:, FLOW_FRAME]

    def linear(z: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Flat index into (B, T, Z, Y, X)."""
        return (((batch_idx * num_frames + frame) * size_z + z) * size_y + y) * size_x + x

    # changed voxels: the sources (zeroed) and the targets (mean of their sources), which win
    keys, inverse = torch.unique(torch.cat([linear(src_z, src_y, src_x),
                                            linear(tgt_z, tgt_y, tgt_x)]), return_inverse=True)
    target = inverse[len(rows):]  # (F,) each row's target among the keys
    counts = torch.bincount(target, minlength=len(keys)).clamp(min=1).to(density.dtype)[:, None]

    def overlay(volume: Tensor) -> OverlaidVolumes:
        sources = volume[batch_idx, src_z, src_y, src_x]  # (F, C)
        sums = sources.new_zeros(len(keys), volume.shape[-1]).index_add(0, target, sources)
        return OverlaidVolumes.overlay(volume, num_frames, keys, sums / counts)

    return overlay(density), overlay(semantics)


def apply_flow_clipped(density: Tensor,
                       semantics: Tensor,
                       voxel_flow: list[Tensor],
                       num_frames: int,
                       class_filter: bool = True) -> tuple[Tensor, Tensor]:
    """:func:`warp_by_flow` as the original's dense (B, T, Z, Y, X, C) volume pair (tests and
    inspection; the renderer reads the overlaid form)."""
    batch = density.shape[0]
    density_t, semantics_t = warp_by_flow(density, semantics, voxel_flow, num_frames,
                                          class_filter)
    return (density_t.dense().unflatten(0, (batch, num_frames)),
            semantics_t.dense().unflatten(0, (batch, num_frames)))
