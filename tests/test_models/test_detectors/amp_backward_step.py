"""One bf16-autocast training step of the tiny OccFlowNet, run as a child process by
``test_occflownet.test_backward_after_cpu_autocast_gives_finite_gradients``.

``python amp_backward_step.py OUT.pt`` builds the tiny golden model (seed 0) and the synthetic
sample 0 of ``occ_inputs``, runs ``forward(mode='loss')`` under CPU bf16 autocast, the backward
outside it, and saves ``{'losses': {name: float}, 'grads': {param: (dtype, all_finite, abs_sum)}}``.
"""
from __future__ import annotations

import sys

import torch
from mmengine.runner.amp import autocast

from mmdet3d.testing.occ_inputs import make_batch, take_sample
from mmdet3d.testing.tiny_model import build_tiny_model
from mmdet3d.utils import register_all_modules



def main(out: str) -> None:
    register_all_modules()
    torch.manual_seed(0)
    model = build_tiny_model().train()
    sample = take_sample(make_batch(batch_size=2, with_gt_occ=True), 0)
    with autocast(device_type='cpu', dtype=torch.bfloat16):
        losses = model(**sample, mode='loss')
    sum(losses.values()).backward()
    grads = {name: (str(p.grad.dtype), bool(torch.isfinite(p.grad).all()),
                    float(p.grad.abs().sum())) if p.grad is not None else None
             for name, p in model.named_parameters()}
    torch.save(dict(losses={k: float(v) for k, v in losses.items()}, grads=grads), out)


if __name__ == '__main__':
    main(sys.argv[1])
