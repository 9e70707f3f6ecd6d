"""CameraInputs: stacking, unstacking, device/dtype moves and the bda."""
from __future__ import annotations

import pytest
import torch

from mmdet3d.structures.camera_inputs import CameraInputs


def _sample(seed: int, views: int = 6, with_bda: bool = True) -> CameraInputs:
    gen = torch.Generator().manual_seed(seed)
    return CameraInputs(
        imgs=torch.rand(views, 3, 4, 8, generator=gen),
        sensor2egos=torch.rand(views, 4, 4, generator=gen),
        ego2globals=torch.rand(views, 4, 4, generator=gen),
        intrins=torch.rand(views, 3, 3, generator=gen),
        post_rots=torch.rand(views, 3, 3, generator=gen),
        post_trans=torch.rand(views, 3, generator=gen),
        bda=torch.rand(3, 3, generator=gen) if with_bda else None)


def test_stack_then_unstack_gives_the_samples_back():
    samples = [_sample(0), _sample(1), _sample(2)]
    batch = CameraInputs.stack(samples)
    assert batch.imgs.shape == (3, 6, 3, 4, 8) and batch.bda.shape == (3, 3, 3)
    assert batch.num_views == 6 and batch.image_size == (4, 8)
    torch.testing.assert_close(batch.post_trans[1], samples[1].post_trans, rtol=0, atol=0)
    for got, want in zip(batch.unstack(), samples):
        for name in ('imgs', 'sensor2egos', 'ego2globals', 'intrins', 'post_rots', 'post_trans',
                     'bda'):
            assert torch.equal(getattr(got, name), getattr(want, name)), name


def test_bda_is_set_once_and_stacks_only_when_every_sample_has_it():
    plain = _sample(0, with_bda=False)
    assert plain.bda is None and CameraInputs.stack([plain, plain]).bda is None
    with_bda = plain.with_bda(torch.eye(3))
    assert plain.bda is None and torch.equal(with_bda.bda, torch.eye(3))
    assert with_bda.imgs is plain.imgs
    with pytest.raises(ValueError, match='bda'):
        CameraInputs.stack([plain, with_bda])
    with pytest.raises(ValueError, match='at least one'):
        CameraInputs.stack([])


def test_to_casts_every_tensor():
    half = _sample(0).to(torch.float64)
    assert {getattr(half, name).dtype for name in ('imgs', 'bda', 'post_trans')} == {
        torch.float64}
    assert _sample(0, with_bda=False).to('cpu').bda is None
