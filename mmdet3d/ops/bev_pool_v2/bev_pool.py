"""``bev_pool_v2``: the public op, its autograd Function and the implementation dispatch."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._ext import ext_error, ext_has_cuda, load_ext
from .reference import bev_pool_v2_reference

IMPLS = ('auto', 'ext', 'torch')
_EXT_DTYPES = {
    'cpu': (torch.float32, torch.float64),
    'cuda': (torch.float16, torch.bfloat16, torch.float32, torch.float64),
}
_warned: set[str] = set()


class BEVPoolV2Function(torch.autograd.Function):
    """The compiled op with its exact backward (gradients for ``depth`` and ``feat`` only)."""

    @staticmethod
    def forward(ctx: Any, depth: Tensor, feat: Tensor, ranks_depth: Tensor, ranks_feat: Tensor,
                ranks_bev: Tensor, bev_feat_shape: Sequence[int], interval_starts: Tensor,
                interval_lengths: Tensor) -> Tensor:
        batch, size_z, size_y, size_x, _ = (int(s) for s in bev_feat_shape)
        out = load_ext().forward(depth, feat, ranks_depth, ranks_feat, ranks_bev,
                                 interval_starts, interval_lengths, batch, size_z, size_y, size_x)
        ctx.save_for_backward(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
                              interval_lengths)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, out_grad: Tensor) -> tuple[Tensor | None, ...]:
        depth_grad, feat_grad = load_ext().backward(out_grad.contiguous(), *ctx.saved_tensors)
        return depth_grad, feat_grad, None, None, None, None, None, None


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _ext_unsupported_reason(depth: Tensor) -> str | None:
    """Why the extension cannot run these inputs, or None if it can."""
    if load_ext() is None:
        return f'the bev_pool_v2 extension is not built ({ext_error()!r})'
    device = depth.device.type
    if device == 'cuda' and not ext_has_cuda():
        return 'the bev_pool_v2 extension was built without CUDA kernels'
    if depth.dtype not in _EXT_DTYPES.get(device, ()):
        return f'the bev_pool_v2 extension has no {device} kernel for {depth.dtype}'
    return None


def _check_inputs(depth: Tensor, feat: Tensor, ranks_depth: Tensor, ranks_feat: Tensor,
                  ranks_bev: Tensor, bev_feat_shape: Sequence[int], interval_starts: Tensor,
                  interval_lengths: Tensor) -> None:
    if depth.dim() != 5 or feat.dim() != 5:
        raise ValueError(f'expected depth (B, N, D, H, W) and feat (B, N, H, W, C), got '
                         f'{tuple(depth.shape)} and {tuple(feat.shape)}')
    if depth.shape[:2] != feat.shape[:2] or depth.shape[3:] != feat.shape[2:4]:
        raise ValueError(f'depth {tuple(depth.shape)} and feat {tuple(feat.shape)} disagree on '
                         f'(B, N, H, W)')
    if len(bev_feat_shape) != 5 or bev_feat_shape[0] != depth.shape[0] \
            or bev_feat_shape[4] != feat.shape[4]:
        raise ValueError(f'bev_feat_shape must be (B, Z, Y, X, C) with B={depth.shape[0]} and '
                         f'C={feat.shape[4]}, got {tuple(bev_feat_shape)}')
    if not depth.is_floating_point() or depth.dtype != feat.dtype:
        raise TypeError(f'depth and feat must share one floating-point dtype, got {depth.dtype} '
                        f'and {feat.dtype}')
    int_args = dict(ranks_depth=ranks_depth, ranks_feat=ranks_feat, ranks_bev=ranks_bev,
                    interval_starts=interval_starts, interval_lengths=interval_lengths)
    for name, tensor in int_args.items():
        if tensor.dtype != torch.int32 or tensor.dim() != 1:
            raise TypeError(f'{name} must be a 1-D int32 tensor, got {tensor.dtype} with shape '
                            f'{tuple(tensor.shape)}')
    if not ranks_depth.numel() == ranks_feat.numel() == ranks_bev.numel():
        raise ValueError(f'ranks_depth, ranks_feat and ranks_bev must have the same length, got '
                         f'{ranks_depth.numel()}, {ranks_feat.numel()}, {ranks_bev.numel()}')
    if interval_starts.numel() != interval_lengths.numel():
        raise ValueError(f'interval_starts and interval_lengths must have the same length, got '
                         f'{interval_starts.numel()} and {interval_lengths.numel()}')
    for name, tensor in dict(depth=depth, feat=feat, **int_args).items():
        if tensor.device != depth.device:
            raise ValueError(f'{name} is on {tensor.device} but depth is on {depth.device}')
        if not tensor.is_contiguous():
            raise ValueError(f'{name} must be contiguous; call .contiguous() first')


def bev_pool_v2(depth: Tensor, feat: Tensor, ranks_depth: Tensor, ranks_feat: Tensor,
                ranks_bev: Tensor, bev_feat_shape: Sequence[int], interval_starts: Tensor,
                interval_lengths: Tensor, impl: str = 'auto') -> Tensor:
    """Lift-splat pooling: out[ranks_bev[p]] += depth[ranks_depth[p]] * feat[ranks_feat[p]].

    The points must be sorted by ``ranks_bev`` and ``interval_starts``/``interval_lengths``
    must describe its runs of equal values (as :func:`voxel_pooling_prepare_v2` returns them).
    Voxels without points are 0.

    Args:
        depth: (B, N, D, H, W) depth probabilities, contiguous.
        feat: (B, N, H, W, C) context features, channels last, contiguous, same dtype as depth.
        ranks_depth: (P,) int32 flat indices into ``depth``.
        ranks_feat: (P,) int32 flat indices into the rows of ``feat`` viewed as (B*N*H*W, C).
        ranks_bev: (P,) int32 flat indices into the (B, Z, Y, X) grid, sorted.
        bev_feat_shape: (B, Z, Y, X, C).
        interval_starts: (I,) int32 first point of each run of equal ``ranks_bev``.
        interval_lengths: (I,) int32 number of points of each run.
        impl: ``'ext'`` (compiled kernels; CPU float32/float64, CUDA float16/bfloat16/float32/
            float64), ``'torch'`` (pure-PyTorch reference) or ``'auto'`` (the extension when it
            supports the inputs, else the reference with a one-time warning). Defaults to 'auto'.

    Returns:
        (B, C, Z, Y, X) pooled features in the dtype of ``feat``; differentiable with respect to
        ``depth`` and ``feat``.
    """
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    _check_inputs(depth, feat, ranks_depth, ranks_feat, ranks_bev, bev_feat_shape,
                  interval_starts, interval_lengths)
    if impl != 'torch':
        reason = _ext_unsupported_reason(depth)
        if reason is None:
            return BEVPoolV2Function.apply(depth, feat, ranks_depth, ranks_feat, ranks_bev,
                                           tuple(bev_feat_shape), interval_starts,
                                           interval_lengths)
        if impl == 'ext':
            raise RuntimeError(f"bev_pool_v2(impl='ext'): {reason}")
        _warn_once(reason, f'{reason}; using the pure-PyTorch bev_pool_v2 reference instead')
    return bev_pool_v2_reference(depth, feat, ranks_depth, ranks_feat, ranks_bev, bev_feat_shape)
