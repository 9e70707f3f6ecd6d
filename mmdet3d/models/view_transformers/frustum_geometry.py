"""Camera frustum of the lift step and its mapping into the (augmented) key-ego frame (spec 2.7.1).

Frames: ``img`` = augmented input-image pixels, ``cam`` = camera (x right, y down, z forward),
``ego`` = the key ego frame the poses are expressed in, then the BEV augmentation ``bda``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


def grid_infos(grid_config: Mapping[str, Sequence[float]]) -> tuple[Tensor, Tensor, Tensor]:
    """Lower bound, voxel size and voxel count of the (x, y, z) grid.

    Args:
        grid_config: ``{'x': [lo, hi, step], 'y': [...], 'z': [...], ...}`` in metres.

    Returns:
        ``(grid_lower_bound, grid_interval, grid_size)``, each a (3,) float32 tensor in (x, y, z)
        order; ``grid_size = (hi - lo) / step`` (e.g. 200, 200, 16).
    """
    axes = [grid_config[key] for key in ('x', 'y', 'z')]
    lower = torch.tensor([cfg[0] for cfg in axes], dtype=torch.float32)
    interval = torch.tensor([cfg[2] for cfg in axes], dtype=torch.float32)
    size = torch.tensor([(cfg[1] - cfg[0]) / cfg[2] for cfg in axes], dtype=torch.float32)
    return lower, interval, size


def depth_bin_values(depth_cfg: Sequence[float], sid: bool = False) -> Tensor:
    """Depths (metres) of the D bins: ``arange(lo, hi, step)``, or spacing-increasing (SID).

    Args:
        depth_cfg: ``[lo, hi, step]``, e.g. ``[1.0, 45.0, 0.5]`` -> D = 88.
        sid: spacing-increasing discretisation ``lo * ((hi - 1) / lo) ** (k / (D - 1))`` with the
            same D. Defaults to False.

    Returns:
        (D,) float32 bin depths.
    """
    depth = torch.arange(*depth_cfg, dtype=torch.float32)
    if not sid:
        return depth
    num_bins = depth.shape[0]
    lo, hi = (torch.tensor(v, dtype=torch.float32) for v in depth_cfg[:2])
    k = torch.arange(num_bins, dtype=torch.float32)
    return torch.exp(torch.log(lo) + k / (num_bins - 1) * torch.log((hi - 1) / lo))


def create_frustum(depth_cfg: Sequence[float],
                   input_size: Sequence[int],
                   downsample: int,
                   sid: bool = False) -> Tensor:
    """Frustum points ``(u, v, d)`` of a feature map of stride ``downsample``.

    The h = H_in // downsample rows and w = W_in // downsample columns sit at
    ``linspace(0, H_in - 1, h)`` and ``linspace(0, W_in - 1, w)`` input pixels.

    Args:
        depth_cfg: ``[lo, hi, step]`` of the depth bins (see :func:`depth_bin_values`).
        input_size: (H_in, W_in) of the network input image.
        downsample: feature stride (16 for the main frustum, 4 for the stereo one).
        sid: spacing-increasing depth bins. Defaults to False.

    Returns:
        (D, h, w, 3) float32, last axis (u px, v px, d m).
    """
    height_in, width_in = input_size
    height, width = height_in // downsample, width_in // downsample
    depth = depth_bin_values(depth_cfg, sid)
    num_bins = depth.shape[0]
    d = depth.view(-1, 1, 1).expand(num_bins, height, width)  # (D,) -> (D, h, w)
    u = torch.linspace(0, width_in - 1, width).view(1, 1, width).expand(num_bins, height, width)
    v = torch.linspace(0, height_in - 1, height).view(1, height, 1).expand(num_bins, height, width)
    return torch.stack((u, v, d), dim=-1)  # (D, h, w, 3)


def unproject_frustum(frustum: Tensor, post_rots: Tensor, post_trans: Tensor) -> Tensor:
    """Undo the image augmentation and lift each frustum point onto its camera ray.

    Args:
        frustum: (D, h, w, 3) points (u, v, d) in augmented-image pixels and metres.
        post_rots: (B, N, 3, 3) image augmentation (2x2 embedded), original px -> augmented px.
        post_trans: (B, N, 3) image augmentation translation (third entry 0).

    Returns:
        (B, N, D, h, w, 3, 1) points ``(u * d, v * d, d)`` in original-image pixel coordinates.
    """
    batch, cams = post_trans.shape[:2]
    points = frustum.to(post_trans) - post_trans.view(batch, cams, 1, 1, 1, 3)  # (B, N, D, h, w, 3)
    points = torch.inverse(post_rots).view(batch, cams, 1, 1, 1, 3, 3).matmul(
        points.unsqueeze(-1))  # (B, N, D, h, w, 3, 1)
    return torch.cat((points[..., :2, :] * points[..., 2:3, :], points[..., 2:3, :]), dim=5)


def frustum_to_ego(frustum: Tensor, sensor2ego: Tensor, intrins: Tensor, post_rots: Tensor,
                   post_trans: Tensor, bda: Tensor) -> Tensor:
    """The original's ``get_lidar_coor``: frustum points in the BEV-augmented key-ego frame.

    ``p = bda @ (R_s2e @ K^-1 @ (u d, v d, d) + t_s2e)`` with (u, v) the un-augmented pixel.

    Args:
        frustum: (D, h, w, 3) frustum of :func:`create_frustum`.
        sensor2ego: (B, N, 4, 4) camera -> key ego (sensor2keyego of the frame).
        intrins: (B, N, 3, 3) camera intrinsics K (original-image pixels).
        post_rots: (B, N, 3, 3) image augmentation rotation/scale.
        post_trans: (B, N, 3) image augmentation translation.
        bda: (B, 3, 3) BEV augmentation.

    Returns:
        (B, N, D, h, w, 3) points (x, y, z) in metres.
    """
    batch, cams = sensor2ego.shape[:2]
    points = unproject_frustum(frustum, post_rots, post_trans)  # (B, N, D, h, w, 3, 1)
    combine = sensor2ego[:, :, :3, :3].matmul(torch.inverse(intrins))  # (B, N, 3, 3)
    points = combine.view(batch, cams, 1, 1, 1, 3, 3).matmul(points).squeeze(-1)
    points = points + sensor2ego[:, :, :3, 3].view(batch, cams, 1, 1, 1, 3)
    # (B, N, D, h, w, 3) -> (B, N, D, h, w, 3, 1) -> rotate by bda -> (B, N, D, h, w, 3)
    return bda.view(batch, 1, 1, 1, 1, 3, 3).matmul(points.unsqueeze(-1)).squeeze(-1)


def grid_shape(grid_size: Tensor) -> tuple[int, int, int]:
    """(X, Y, Z) voxel counts as ints from the float ``grid_size`` of :func:`grid_infos`."""
    return tuple(round(float(s)) for s in grid_size)
