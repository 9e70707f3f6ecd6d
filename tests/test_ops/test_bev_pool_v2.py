"""bev_pool_v2: the compiled kernels against the pure-PyTorch reference, the spec 8.1 self-test,
gradcheck, thread independence, input validation and the implementation dispatch."""
from __future__ import annotations

import os
import warnings

import pytest
import torch

from mmdet3d.ops.bev_pool_v2 import _ext
from mmdet3d.ops.bev_pool_v2 import bev_pool as bev_pool_module
from mmdet3d.ops.bev_pool_v2 import bev_pool_v2, bev_pool_v2_reference, ext_error, load_ext

I32 = torch.int32


@pytest.fixture(scope='module')
def ext():
    """The compiled extension; its absence fails the tests unless BUILD_NO_EXT=1 was chosen."""
    module = load_ext()
    if module is None:
        message = f'bev_pool_v2 extension not built: {ext_error()!r}'
        if os.getenv('BUILD_NO_EXT', '0') == '1':
            pytest.skip(message)
        pytest.fail(message + ' (run tools/install.sh or set BUILD_NO_EXT=1)')
    return module


def intervals_of(ranks_bev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs of equal values of a sorted rank array: (starts, lengths), int32."""
    _, lengths = torch.unique_consecutive(ranks_bev, return_counts=True)
    starts = torch.cumsum(lengths, 0) - lengths
    return starts.to(I32), lengths.to(I32)


def make_case(batch=1, cams=2, bins=3, height=4, width=5, channels=6, grid=(2, 3, 4),
              num_points=None, num_voxels=None, replacement=False, dtype=torch.float64,
              device='cpu'):
    """Random depth, feat and sorted ranks; ``num_voxels`` limits the distinct voxels hit."""
    size_z, size_y, size_x = grid
    depth = torch.rand(batch, cams, bins, height, width, dtype=dtype)
    feat = torch.randn(batch, cams, height, width, channels, dtype=dtype)
    total = depth.numel()
    num_points = total // 2 if num_points is None else num_points
    if replacement:
        ranks_depth = torch.randint(0, total, (num_points,))
        ranks_feat = torch.randint(0, batch * cams * height * width, (num_points,))
    else:
        ranks_depth = torch.randperm(total)[:num_points]
        cam = ranks_depth // (bins * height * width)
        ranks_feat = cam * height * width + ranks_depth % (height * width)
    voxels = batch * size_z * size_y * size_x
    chosen = torch.randperm(voxels)[:num_voxels or voxels]
    ranks_bev = chosen[torch.randint(0, chosen.numel(), (num_points,))]
    ranks_bev, order = torch.sort(ranks_bev, stable=True)
    ranks = [r.to(I32) for r in (ranks_depth[order], ranks_feat[order], ranks_bev)]
    starts, lengths = intervals_of(ranks[2])
    tensors = [depth, feat, *ranks, starts, lengths]
    depth, feat, rd, rf, rb, starts, lengths = [t.to(device) for t in tensors]
    return depth, feat, rd, rf, rb, (batch, size_z, size_y, size_x, channels), starts, lengths


def run(impl: str, case, out_grad=None):
    """Forward and (with ``out_grad``) backward; returns (out, depth_grad, feat_grad)."""
    depth, feat, rd, rf, rb, shape, starts, lengths = case
    depth = depth.detach().clone().requires_grad_()
    feat = feat.detach().clone().requires_grad_()
    out = bev_pool_v2(depth, feat, rd, rf, rb, shape, starts, lengths, impl=impl)
    if out_grad is None:
        return out.detach(), None, None
    out.backward(out_grad)
    return out.detach(), depth.grad, feat.grad


CASES = {
    'random': dict(),
    'batch2_wide': dict(batch=2, cams=3, bins=4, height=3, width=7, channels=32, grid=(3, 5, 4)),
    'duplicate_ranks': dict(num_points=400, num_voxels=7, replacement=True),
    'single_point': dict(num_points=1),
    'one_interval': dict(num_points=50, num_voxels=1),
    'empty': dict(num_points=0),
}
TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('name', list(CASES))
def test_ext_matches_reference(ext, name, dtype):
    case = make_case(dtype=dtype, **CASES[name])
    shape = case[5]
    out_grad = torch.randn(shape[0], shape[4], *shape[1:4], dtype=dtype)
    expected = run('torch', case, out_grad)
    actual = run('ext', case, out_grad)
    tol = TOLERANCES[dtype]
    for got, want in zip(actual, expected):
        assert got.dtype == dtype and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    if name == 'empty':
        assert not actual[0].any() and not actual[1].any() and not actual[2].any()
    else:
        assert actual[0].abs().sum() > 0


def test_reference_matches_explicit_loop():
    """The oracle itself against a plain Python loop over the points."""
    depth, feat, rd, rf, rb, shape, starts, lengths = make_case(
        num_points=60, num_voxels=9, replacement=True)
    out = bev_pool_v2_reference(depth, feat, rd, rf, rb, shape)
    expected = torch.zeros(shape[0] * shape[1] * shape[2] * shape[3], shape[4], dtype=depth.dtype)
    for d, f, b in zip(rd.tolist(), rf.tolist(), rb.tolist()):
        expected[b] += depth.reshape(-1)[d] * feat.reshape(-1, shape[4])[f]
    torch.testing.assert_close(out, expected.view(shape).permute(0, 4, 1, 2, 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize('impl', ['torch', 'ext'])
def test_spec_self_test(request, impl):
    """Spec 8.1: the hand-computed 2x2x2 example of the original bev_pool.py."""
    if impl == 'ext':
        request.getfixturevalue('ext')
    depth = torch.tensor([0.3, 0.4, 0.2, 0.1, 0.7, 0.6, 0.8, 0.9]).view(1, 1, 2, 2, 2)
    feat = torch.ones(1, 1, 2, 2, 2)
    depth.requires_grad_()
    feat.requires_grad_()
    ranks = [torch.tensor(r, dtype=I32) for r in ([0, 4, 1, 6], [0, 0, 1, 2], [0, 0, 1, 1])]
    starts, lengths = torch.tensor([0, 2], dtype=I32), torch.tensor([2, 2], dtype=I32)
    out = bev_pool_v2(depth, feat, *ranks, (1, 1, 2, 2, 2), starts, lengths, impl=impl)
    loss = out.sum()
    loss.backward()
    assert out.shape == (1, 2, 1, 2, 2)
    torch.testing.assert_close(loss, torch.tensor(4.4))
    torch.testing.assert_close(depth.grad.flatten(), torch.tensor([2., 2, 0, 0, 2, 0, 2, 0]))
    torch.testing.assert_close(feat.grad.flatten(),
                               torch.tensor([1., 1, 0.4, 0.4, 0.8, 0.8, 0, 0]))


@pytest.mark.parametrize('impl', ['torch', 'ext'])
def test_gradcheck(request, impl):
    if impl == 'ext':
        request.getfixturevalue('ext')
    depth, feat, rd, rf, rb, shape, starts, lengths = make_case(
        cams=1, bins=2, height=2, width=3, channels=3, grid=(1, 2, 2), num_points=10,
        replacement=True)
    depth.requires_grad_()
    feat.requires_grad_()

    def pool(d: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return bev_pool_v2(d, f, rd, rf, rb, shape, starts, lengths, impl=impl)

    assert torch.autograd.gradcheck(pool, (depth, feat))


def test_ext_independent_of_thread_count(ext):
    # ~1100 intervals and 396 feat rows: many parallel chunks of 64 in forward and backward
    case = make_case(batch=2, cams=3, bins=8, height=6, width=11, channels=16, grid=(4, 16, 16),
                     dtype=torch.float32)
    assert case[6].numel() > 8 * 64
    shape = case[5]
    out_grad = torch.randn(shape[0], shape[4], *shape[1:4])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = run('ext', case, out_grad)
        torch.set_num_threads(max(2, threads))
        multi = run('ext', case, out_grad)
    finally:
        torch.set_num_threads(threads)
    for one, many in zip(single, multi):
        assert torch.equal(one, many)


def _bad_inputs(case, which):
    depth, feat, rd, rf, rb, shape, starts, lengths = case
    if which == 'int64_ranks':
        rd = rd.long()
    elif which == 'dtype_mismatch':
        feat = feat.float()
    elif which == 'integer_depth':
        depth, feat = depth.long(), feat.long()
    elif which == 'length_mismatch':
        rf = rf[:-1].contiguous()
    elif which == 'interval_length_mismatch':
        lengths = lengths[:-1].contiguous()
    elif which == 'non_contiguous_feat':
        feat = feat.transpose(2, 3).contiguous().transpose(2, 3)
    elif which == 'non_contiguous_ranks':
        rd = torch.stack([rd, rd], 1)[:, 0]
    elif which == 'shape_mismatch':
        feat = feat[:, :, :-1].contiguous()
    return depth, feat, rd, rf, rb, shape, starts, lengths


BAD = {
    'int64_ranks': 'ranks_depth must be a 1-D int32',
    'dtype_mismatch': 'share one floating-point dtype',
    'integer_depth': 'share one floating-point dtype',
    'length_mismatch': 'must have the same length',
    'interval_length_mismatch': 'interval_starts and interval_lengths must have the same length',
    'non_contiguous_feat': 'feat must be contiguous',
    'non_contiguous_ranks': 'ranks_depth must be contiguous',
    'shape_mismatch': 'disagree on',
}


@pytest.mark.parametrize('which', list(BAD))
def test_invalid_inputs_raise_clear_errors(ext, which):
    args = _bad_inputs(make_case(), which)
    for impl in ('auto', 'torch'):
        with pytest.raises((TypeError, ValueError), match=BAD[which]):
            bev_pool_v2(*args, impl=impl)
    depth, feat, rd, rf, rb, shape, starts, lengths = args
    with pytest.raises(RuntimeError, match=BAD[which]):
        ext.forward(depth, feat, rd, rf, rb, starts, lengths, *shape[:4])


def test_ext_rejects_out_of_range_ranks(ext):
    depth, feat, rd, rf, rb, shape, starts, lengths = make_case()
    for name, bad in (('ranks_depth', rd), ('ranks_feat', rf), ('ranks_bev', rb)):
        args = {'ranks_depth': rd, 'ranks_feat': rf, 'ranks_bev': rb}
        args[name] = bad.clone()
        args[name][-1] = 10**6
        with pytest.raises(RuntimeError, match=f'{name} must lie in'):
            ext.forward(depth, feat, args['ranks_depth'], args['ranks_feat'], args['ranks_bev'],
                        starts, lengths, *shape[:4])
    long_lengths = lengths.clone()
    long_lengths[-1] += 1
    with pytest.raises(RuntimeError, match='past the number of points'):
        ext.forward(depth, feat, rd, rf, rb, starts, long_lengths, *shape[:4])


def test_ext_rejects_half_on_cpu(ext):
    case = make_case(dtype=torch.float16)
    with pytest.raises(RuntimeError, match='no cpu kernel for torch.float16'):
        bev_pool_v2(*case, impl='ext')


def test_auto_falls_back_to_reference_with_one_warning(monkeypatch):
    monkeypatch.setattr(bev_pool_module, 'load_ext', lambda: None)
    monkeypatch.setattr(bev_pool_module, 'ext_error', lambda: ImportError('not built'))
    monkeypatch.setattr(bev_pool_module, '_warned', set())
    case = make_case()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        first = bev_pool_v2(*case)
        second = bev_pool_v2(*case)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and 'not built' in messages[0]
    expected = bev_pool_v2_reference(*case[:6])
    assert torch.equal(first, expected) and torch.equal(second, expected)
    with pytest.raises(RuntimeError, match="impl='ext'.*not built"):
        bev_pool_v2(*case, impl='ext')
    with pytest.raises(ValueError, match='impl must be one of'):
        bev_pool_v2(*case, impl='cuda')


def test_missing_extension_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(_ext, 'EXT_NAME', 'mmdet3d.ops.bev_pool_v2.no_such_ext')
    monkeypatch.setattr(_ext, '_state', {})
    assert _ext.load_ext() is None
    assert isinstance(_ext.ext_error(), ImportError)
    assert not _ext.ext_has_cuda()
    assert _ext.ext_status().startswith('bev_pool_v2_ext: not available (ModuleNotFoundError')


@pytest.mark.cuda
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5), (torch.float16, 2e-2),
                                       (torch.bfloat16, 1e-1)])
@pytest.mark.parametrize('name', ['random', 'batch2_wide', 'duplicate_ranks', 'empty'])
def test_cuda_ext_matches_reference(ext, name, dtype, tol):
    assert ext.with_cuda(), 'the extension was built without its CUDA kernels'
    case = make_case(dtype=torch.float64, **CASES[name])
    shape = case[5]
    out_grad = torch.randn(shape[0], shape[4], *shape[1:4], dtype=torch.float64)
    expected = run('torch', case, out_grad)
    cuda_case = [t.to('cuda', dtype) if torch.is_tensor(t) and t.is_floating_point()
                 else (t.cuda() if torch.is_tensor(t) else t) for t in case]
    actual = run('ext', cuda_case, out_grad.to('cuda', dtype))
    for got, want in zip(actual, expected):
        assert got.dtype == dtype
        torch.testing.assert_close(got.double().cpu(), want, rtol=tol, atol=tol)
