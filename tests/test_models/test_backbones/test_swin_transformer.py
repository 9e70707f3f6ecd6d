"""SwinTransformer: checkpoint layout, shapes, merging order, window attention, cp, autocast."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mmdet3d.models.backbones.swin import SwinTransformer
from mmdet3d.models.layers import swin_block
from mmdet3d.models.layers.patch_merging import PatchMerging
from mmdet3d.models.layers.window_msa import ShiftWindowMSA, shifted_window_mask
from mmdet3d.registry import MODELS

SWIN_B = dict(
    type='SwinTransformer',
    embed_dims=128,
    depths=[2, 2, 18, 2],
    num_heads=[4, 8, 16, 32],
    window_size=12,
    mlp_ratio=4,
    patch_size=4,
    strides=(4, 2, 2, 2),
    out_indices=(2, 3),
    qkv_bias=True,
    patch_norm=True,
    drop_path_rate=0.1,
    return_stereo_feat=True)


def _tiny_swin(**kwargs) -> SwinTransformer:
    cfg = dict(embed_dims=16, depths=(2, 2), num_heads=(1, 2), strides=(4, 2), window_size=4,
               out_indices=(0, 1))
    cfg.update(kwargs)
    model = SwinTransformer(**cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def swin_b() -> SwinTransformer:
    return MODELS.build(SWIN_B).eval()  # init_weights is covered on a small model


def test_swin_b_state_dict_matches_manifest(swin_b, golden_dir: Path):
    manifest = json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())
    prefix = 'img_backbone.'
    expected = [(k[len(prefix):], v['shape']) for k, v in manifest['keys'].items()
                if k.startswith(prefix)]
    got = [(k, list(v.shape)) for k, v in swin_b.state_dict().items()]
    assert len(expected) == 353
    assert got == expected


def test_swin_b_forward_shapes(swin_b):
    x = torch.randn(1, 3, 128, 352)
    with torch.no_grad():
        stereo, out2, out3 = swin_b(x)
        stereo_only = swin_b.forward_stereo_feat(x)
    assert stereo.shape == (1, 128, 32, 88)
    assert out2.shape == (1, 512, 8, 22)
    assert out3.shape == (1, 1024, 4, 11)
    torch.testing.assert_close(stereo_only, stereo, rtol=0, atol=0)
    # norm2/norm3 are (1, 0) at construction: returned stages have per-token zero mean and unit
    # variance over channels, the stereo feature (no output norm) does not
    for out in (out2, out3):
        torch.testing.assert_close(out.mean(1), torch.zeros_like(out[:, 0]), atol=1e-4, rtol=0)
        torch.testing.assert_close(
            out.var(1, unbiased=False), torch.ones_like(out[:, 0]), atol=1e-2, rtol=0)
    assert stereo.mean(1).abs().max() > 1e-2


def test_swin_b_stochastic_depth_linspace(swin_b):
    rates = [
        (blk.attn.drop.drop_prob, blk.ffn.drop_path.drop_prob)
        for stage in swin_b.stages for blk in stage.blocks
    ]
    expected = [0.1 * i / 23 for i in range(24)]
    assert [a for a, _ in rates] == pytest.approx(expected)
    assert [b for _, b in rates] == pytest.approx(expected)
    shifts = [blk.attn.shift_size for blk in swin_b.stages[2].blocks]
    assert shifts == [0, 6] * 9
    assert all(blk.with_cp for stage in swin_b.stages for blk in stage.blocks)


def test_swin_init_weights():
    model = _tiny_swin(embed_dims=64, num_heads=(2, 4))
    qkv = model.stages[1].blocks[0].attn.w_msa.qkv
    assert qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(qkv.bias) == 0
    table = model.stages[0].blocks[1].attn.w_msa.relative_position_bias_table
    assert table.std().item() == pytest.approx(0.02, rel=0.3)
    assert torch.equal(model.norm1.weight, torch.ones(128))
    assert torch.equal(model.stages[0].downsample.norm.bias, torch.zeros(256))


def test_padding_rules_odd_input():
    """130 x 350 -> patch pad to 132 x 352 (33 x 88 tokens) -> merge pad to 17 x 44."""
    model = _tiny_swin(return_stereo_feat=True).eval()
    with torch.no_grad():
        stereo, out0, out1 = model(torch.randn(1, 3, 130, 350))
    assert stereo.shape == (1, 16, 33, 88)
    assert out0.shape == (1, 16, 33, 88)
    assert out1.shape == (1, 32, 17, 44)


def test_output_missing_index_as_none():
    model = _tiny_swin(out_indices=(1, ), output_missing_index_as_none=True).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert outs[0] is None and outs[1].shape == (1, 32, 4, 4)


def test_patch_merging_unfold_channel_order():
    """Merged index c * 4 + kh * 2 + kw, recomputed directly from the token map."""
    C, H, W = 3, 4, 6
    merge = PatchMerging(C, 5)
    with torch.no_grad():
        merge.norm.weight.uniform_(0.5, 1.5)
        merge.norm.bias.normal_()
    x = torch.randn(2, H * W, C)
    out, hw = merge(x, (H, W))
    assert hw == (2, 3)
    grid = x.view(2, H, W, C)
    vec = torch.empty(2, 2, 3, 4 * C)
    for i in range(2):
        for j in range(3):
            for c in range(C):
                for kh in range(2):
                    for kw in range(2):
                        vec[:, i, j, c * 4 + kh * 2 + kw] = grid[:, 2 * i + kh, 2 * j + kw, c]
    ref = merge.reduction(merge.norm(vec.view(2, 6, 4 * C)))
    torch.testing.assert_close(out, ref)


def _direct_window_attention(attn: ShiftWindowMSA, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Token-by-token re-computation in float64 of (shifted) window attention with padding."""
    msa = attn.w_msa
    ws, shift, heads = attn.window_size, attn.shift_size, msa.num_heads
    C = x.shape[-1]
    hd = C // heads
    Hp, Wp = math.ceil(H / ws) * ws, math.ceil(W / ws) * ws
    grid = torch.zeros(Hp, Wp, C, dtype=torch.float64)
    grid[:H, :W] = x[0].view(H, W, C).double()
    wq, bq = msa.qkv.weight.double(), msa.qkv.bias.double()
    table = msa.relative_position_bias_table.double()
    out = torch.zeros(Hp, Wp, C, dtype=torch.float64)
    # attention acts on the rolled map: rolled position p holds original ((p + shift) % size)
    for ph in range(Hp):
        for pw in range(Wp):
            wh, ww = ph // ws, pw // ws
            keys = [(kh, kw) for kh in range(wh * ws, wh * ws + ws)
                    for kw in range(ww * ws, ww * ws + ws)]

            def token(r, c):
                return grid[(r + shift) % Hp, (c + shift) % Wp]

            def region(r, c):
                if shift == 0:
                    return (0, 0)
                return ((r >= Hp - ws) + (r >= Hp - shift), (c >= Wp - ws) + (c >= Wp - shift))

            q = (wq[:C] @ token(ph, pw) + bq[:C]).view(heads, hd) * msa.scale
            ks = torch.stack([wq[C:2 * C] @ token(*k) + bq[C:2 * C] for k in keys]).view(
                -1, heads, hd)
            vs = torch.stack([wq[2 * C:] @ token(*k) + bq[2 * C:] for k in keys]).view(
                -1, heads, hd)
            logits = torch.einsum('hd,nhd->hn', q, ks)
            for n, (kh, kw) in enumerate(keys):
                dh, dw = ph - kh + ws - 1, pw - kw + ws - 1
                logits[:, n] += table[dh * (2 * ws - 1) + dw]
                if region(ph, pw) != region(kh, kw):
                    logits[:, n] -= 100.0
            o = torch.einsum('hn,nhd->hd', logits.softmax(-1), vs).reshape(C)
            out[(ph + shift) % Hp, (pw + shift) % Wp] = (
                msa.proj.weight.double() @ o + msa.proj.bias.double())
    return out[:H, :W].reshape(1, H * W, C)


@pytest.mark.parametrize('shift', [0, 2])
def test_window_attention_matches_direct_computation(shift: int):
    torch.manual_seed(1)
    attn = ShiftWindowMSA(embed_dims=8, num_heads=2, window_size=4, shift_size=shift)
    attn.w_msa.init_weights()
    with torch.no_grad():
        attn.w_msa.relative_position_bias_table.normal_(0, 1.0)
        attn.w_msa.qkv.bias.normal_(0, 0.5)
    H, W = 6, 10  # padded to 8 x 12: padding and both shifted-region splits are exercised
    x = torch.randn(1, H * W, 8)
    out = attn(x, (H, W))
    ref = _direct_window_attention(attn, x, H, W)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_shifted_window_mask_values():
    """-100 exactly between tokens of one window that come from different rolled regions."""
    mask = shifted_window_mask(8, 12, window_size=4, shift_size=2)
    assert mask.shape == (6, 16, 16)
    assert set(mask.unique().tolist()) == {-100.0, 0.0}
    assert mask[0].eq(0).all()  # interior window: one region
    # bottom-right window: 2 x 2 quadrants of 4 tokens each, only same-quadrant pairs attend
    quadrant = torch.tensor([(r >= 2) * 2 + (c >= 2) for r in range(4) for c in range(4)])
    expected = torch.where(quadrant[:, None] == quadrant[None, :], 0.0, -100.0)
    assert torch.equal(mask[5], expected)


def test_gradient_checkpointing_identical(monkeypatch):
    calls = []
    real = swin_block.cp.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(swin_block.cp, 'checkpoint', counting)
    ref = _tiny_swin(with_cp=False, drop_path_rate=0.5, return_stereo_feat=True).train()
    ckp = _tiny_swin(with_cp=True, drop_path_rate=0.5, return_stereo_feat=True).train()
    ckp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 48)
    results = []
    for model in (ref, ckp):
        torch.manual_seed(7)
        outs = model(x)
        sum(o.square().sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    assert len(calls) == 4  # every block of the checkpointed model, none of the reference
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert results[0][1].keys() == results[1][1].keys()
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-6, atol=1e-7)


def test_autocast_bf16():
    model = _tiny_swin(return_stereo_feat=True).train()
    x = torch.randn(1, 3, 32, 48)
    ref = model.eval()(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model.train()(x)
    assert any(o.dtype == torch.bfloat16 for o in outs)
    sum(o.float().sum() for o in outs).backward()
    assert model.patch_embed.projection.weight.grad is not None
    model.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        low = model(x)
    for a, b in zip(low, ref):
        assert torch.isfinite(a).all()
        assert (a.float() - b).abs().max() < 0.1 * b.abs().max()
