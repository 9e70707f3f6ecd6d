"""Per-render-frame volumes: static-density filter (``_2d``) and occupancy-flow voxel moving.

Spec 3.2 step 3 and 3.5.1. Volumes are (B, Z, Y, X, C); flow indices are (z, y, x). The flow
rows arrive in the BEV-augmented frame (``LoadAnnotationsBEVDepth`` flips them with the rest of
the ground truth) and are brought to the model grid (:func:`downsample_flow`) here.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmdet3d.structures.occ3d import FLOW_CLASS, FLOW_FRAME, FLOW_SRC, FLOW_TGT


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


def apply_flow_clipped(density: Tensor,
                       semantics: Tensor,
                       voxel_flow: list[Tensor],
                       num_frames: int,
                       class_filter: bool = True) -> tuple[Tensor, Tensor]:
    """Move predicted dynamic voxels into one volume per render frame (original
    ``apply_flow_clipped``).

    Every frame starts as a copy of the current prediction. Rows whose source voxel's argmax class
    equals the row's class are kept (quirk 11; every row with ``class_filter=False``); their
    source is zeroed in the row's frame, and each unique target (b, t, z, y, x) is overwritten by
    the mean of its sources' values (quirk 10). Values keep their gradient.

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
        density (B, T, Z, Y, X, 1) and semantics (B, T, Z, Y, X, K). Always a pair, also when
        nothing moves (the original returned a 3-tuple there).
    """
    batch, size_z, size_y, size_x, _ = density.shape
    frames_shape = (batch, num_frames, size_z, size_y, size_x)

    def per_frame(volume: Tensor) -> Tensor:
        """(B, Z, Y, X, C) -> fresh (non-view) (B*T*Z*Y*X, C) copy, one per frame."""
        return volume[:, None].expand(*frames_shape, -1).reshape(-1, volume.shape[-1])

    def framed(flat: Tensor) -> Tensor:
        """(B*T*Z*Y*X, C) -> (B, T, Z, Y, X, C) view."""
        return flat.view(*frames_shape, -1)

    density_t, semantics_t = per_frame(density), per_frame(semantics)
    device = density.device
    rows = torch.cat([f.to(device=device, dtype=torch.long).reshape(-1, 11) for f in voxel_flow])
    batch_idx = torch.cat([torch.full((len(f),), b, dtype=torch.long, device=device)
                           for b, f in enumerate(voxel_flow)])
    if rows.numel() == 0:
        return framed(density_t), framed(semantics_t)
    src_z, src_y, src_x = rows[:, FLOW_SRC].unbind(dim=1)
    if class_filter:
        pred = semantics.detach().argmax(dim=-1)  # (B, Z, Y, X)
        keep = pred[batch_idx, src_z, src_y, src_x] == rows[:, FLOW_CLASS]
        if not bool(keep.any()):
            return framed(density_t), framed(semantics_t)
        rows, batch_idx = rows[keep], batch_idx[keep]
    src_z, src_y, src_x = rows[:, FLOW_SRC].unbind(dim=1)
    tgt_z, tgt_y, tgt_x = rows[:, FLOW_TGT].unbind(dim=1)
    frame = rows[:, FLOW_FRAME]
    src_density = density[batch_idx, src_z, src_y, src_x]  # (F, 1)
    src_semantics = semantics[batch_idx, src_z, src_y, src_x]  # (F, K)

    def linear(z: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Flat index into (B, T, Z, Y, X)."""
        return (((batch_idx * num_frames + frame) * size_z + z) * size_y + y) * size_x + x

    src_key = linear(src_z, src_y, src_x)
    tgt_key, inverse = torch.unique(linear(tgt_z, tgt_y, tgt_x), return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(tgt_key)).to(density.dtype)[:, None]

    def move(flat: Tensor, values: Tensor) -> Tensor:
        """Zero the sources, then write the per-target mean, in place on the fresh (not a view,
        so autograd copies nothing extra) per-frame volume (B*T*Z*Y*X, C)."""
        flat.index_fill_(0, src_key, 0.0)
        sums = values.new_zeros(len(tgt_key), values.shape[-1]).index_add(0, inverse, values)
        flat.index_copy_(0, tgt_key, sums / counts)
        return framed(flat)

    return move(density_t, src_density), move(semantics_t, src_semantics)
