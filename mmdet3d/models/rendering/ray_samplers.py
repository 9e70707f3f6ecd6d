"""Sample intervals along rays: jittered uniform pass + inverse-CDF importance pass (spec 3.3).

Distances are metres along unit-length rays. Nothing here carries gradients.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .volume_rendering import use_nerfacc, weights_from_density


def uniform_intervals(num_rays: int,
                      num_samples: int,
                      near: float,
                      far: float,
                      jitter_rand: Tensor | None = None,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Jittered uniform intervals in [near, far] (the original's ``UniformSampler``).

    Normalised edges e = linspace(0, 1, S + 1); each interior edge moves by
    u / S - 1 / (2S) with u ~ U[0, 1) (+- half a bin); the end edges stay fixed.
    Metric edges = near * (1 - e) + far * e; centres are mapped from normalised midpoints.

    Args:
        num_rays: R.
        num_samples: S intervals per ray.
        near: first edge, metres.
        far: last edge, metres.
        jitter_rand: (R, S - 1) uniform [0, 1) numbers; drawn with torch.rand if None.
            Defaults to None.
        device: device of the outputs (that of jitter_rand if given). Defaults to None.
        dtype: float dtype. Defaults to float32.

    Returns:
        edges (R, S + 1) and centres (R, S), metres.
    """
    if jitter_rand is None:
        jitter_rand = torch.rand(num_rays, num_samples - 1, device=device, dtype=dtype)
    if jitter_rand.shape != (num_rays, num_samples - 1):
        raise ValueError(f'jitter_rand must be {(num_rays, num_samples - 1)}, '
                         f'got {tuple(jitter_rand.shape)}')
    bins = torch.linspace(0.0, 1.0, num_samples + 1, device=jitter_rand.device, dtype=dtype)
    bins = bins.expand(num_rays, -1).clone()  # (S + 1,) -> (R, S + 1)
    bins[:, 1:-1] = bins[:, 1:-1] + (jitter_rand.to(dtype) * (1.0 / num_samples)
                                     - 0.5 / num_samples)
    mids = (bins[:, :-1] + bins[:, 1:]) / 2.0  # (R, S)
    edges = near * (1.0 - bins) + far * bins
    centres = near * (1.0 - mids) + far * mids
    return edges, centres


def importance_sampling_torch(edges: Tensor, cdfs: Tensor,
                              num_samples: int) -> tuple[Tensor, Tensor]:
    """Deterministic inverse-CDF sampling, the algorithm of nerfacc 0.5.3's ``importance_sampling``
    (batched, stratified=False), with ``torch.searchsorted``.

    u_k = c_0 + (k + 0.5) * ((c_M - c_0) / n); p = first index in [0, M) with c_p > u_k;
    p0 = max(p - 1, 0), p1 = p; sample = midpoint of (t_p0, t_p1) if c_p1 - c_p0 < 1e-10, else the
    linear interpolation. New edges: midpoints between samples, the outer two extrapolated by half
    a spacing and clipped to [t_0, t_M].

    Args:
        edges: (R, M + 1) sorted interval edges, metres.
        cdfs: (R, M + 1) non-decreasing CDF at the edges.
        num_samples: n >= 2 samples per ray.

    Returns:
        new edges (R, n + 1) and samples (R, n), metres.
    """
    num_edges = edges.shape[-1]
    steps = torch.arange(num_samples, device=cdfs.device, dtype=cdfs.dtype) + 0.5  # (n,)
    cdf_first, cdf_last = cdfs[:, :1], cdfs[:, -1:]
    u = cdf_first + steps * ((cdf_last - cdf_first) / num_samples)  # (R, n)
    upper = torch.searchsorted(cdfs[:, :-1].contiguous(), u.contiguous(), right=True)  # (R, n)
    p0 = (upper - 1).clamp(0, num_edges - 1)
    p1 = upper.clamp(0, num_edges - 1)
    c0, c1 = cdfs.gather(1, p0), cdfs.gather(1, p1)
    t0, t1 = edges.gather(1, p0), edges.gather(1, p1)
    flat = (c1 - c0) < 1e-10
    samples = torch.where(flat, (t0 + t1) * 0.5, (u - c0) * ((t1 - t0) / (c1 - c0)) + t0)
    first = torch.maximum(samples[:, :1] - (samples[:, 1:2] - samples[:, :1]) * 0.5, edges[:, :1])
    last = torch.minimum(samples[:, -1:] + (samples[:, -1:] - samples[:, -2:-1]) * 0.5,
                         edges[:, -1:])
    inner = (samples[:, 1:] + samples[:, :-1]) * 0.5  # (R, n - 1)
    return torch.cat([first, inner, last], dim=1), samples


def importance_sampling(edges: Tensor,
                        cdfs: Tensor,
                        num_samples: int,
                        impl: str = 'auto') -> tuple[Tensor, Tensor]:
    """Dispatch :func:`importance_sampling_torch` or nerfacc's CUDA kernel (CUDA tensors only;
    'auto' uses the kernel only when nerfacc's extension is prebuilt).

    Args:
        edges: (R, M + 1) interval edges, metres.
        cdfs: (R, M + 1) CDF at the edges.
        num_samples: n samples per ray.
        impl: 'auto' | 'torch' | 'nerfacc'. Defaults to 'auto'.

    Returns:
        new edges (R, n + 1) and samples (R, n).
    """
    if use_nerfacc(impl, cdfs, needs_kernel=True):
        if not cdfs.is_cuda:
            raise RuntimeError('nerfacc importance_sampling needs CUDA tensors; use impl=torch')
        from nerfacc.data_specs import RayIntervals
        from nerfacc.pdf import importance_sampling as nerfacc_importance_sampling
        intervals, samples = nerfacc_importance_sampling(
            RayIntervals(vals=edges.contiguous()), cdfs.contiguous(), num_samples)
        return intervals.vals, samples.vals
    return importance_sampling_torch(edges, cdfs, num_samples)


@torch.no_grad()
def sample_along_rays(density_fn: Callable[[Tensor], Tensor],
                      num_rays: int,
                      near: float,
                      far: float,
                      num_samples: int = 100,
                      num_proposal_samples: int = 50,
                      use_proposal: bool = True,
                      jitter_rand: Tensor | None = None,
                      impl: str = 'auto',
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    """Final sample intervals of the renderer (original ``generate_samples``).

    With ``use_proposal``: a jittered uniform pass of ``num_proposal_samples`` intervals, whose
    densities give the CDF 1 - [T_0, ..., T_{M-1}, 0] at the edges (remaining transmittance goes
    into the last interval), then ``num_samples`` importance samples. Without: one uniform pass of
    ``num_samples`` intervals.

    Args:
        density_fn: maps sample distances (R, S) to densities (R, S) along the rays.
        num_rays: R.
        near: first edge, metres.
        far: last edge, metres.
        num_samples: final samples per ray. Defaults to 100.
        num_proposal_samples: uniform proposal intervals. Defaults to 50.
        use_proposal: two-pass sampling. Defaults to True.
        jitter_rand: (R, S_uniform - 1) uniform numbers for the uniform pass. Defaults to None.
        impl: backend switch. Defaults to 'auto'.
        device: device. Defaults to None.
        dtype: float dtype. Defaults to float32.

    Returns:
        starts, ends, centres: each (R, num_samples), metres.
    """
    if not use_proposal:
        edges, centres = uniform_intervals(num_rays, num_samples, near, far, jitter_rand,
                                           device, dtype)
        return edges[:, :-1], edges[:, 1:], centres
    edges, centres = uniform_intervals(num_rays, num_proposal_samples, near, far, jitter_rand,
                                       device, dtype)
    sigmas = density_fn(centres)  # (R, M)
    _, transmittance, _ = weights_from_density(edges[:, :-1], edges[:, 1:], sigmas, impl)
    cdfs = 1.0 - torch.cat([transmittance, torch.zeros_like(transmittance[:, :1])], dim=1)
    new_edges, samples = importance_sampling(edges, cdfs, num_samples, impl)
    return new_edges[:, :-1], new_edges[:, 1:], samples
