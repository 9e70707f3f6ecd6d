"""Non-strict checkpoint loading: what is loaded, what is skipped and why, and the log."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from mmengine.runner.checkpoint import load_checkpoint as mmengine_load_checkpoint

from mmdet3d.models.backbones.swin import SwinTransformer
from mmdet3d.models.necks.fpn_lss import FPN_LSS
from mmdet3d.models.utils.checkpoint import (load_checkpoint_non_strict,
                                             load_state_dict_non_strict)


def _neck() -> FPN_LSS:
    return FPN_LSS(6, 4, scale_factor=2, input_feature_index=(0, 1), extra_upsample=None)


def _source_state_dict() -> dict[str, torch.Tensor]:
    """A checkpoint for _neck() with one widened conv, one dropped and one foreign key."""
    src = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in _neck().state_dict().items()}
    src['conv.3.weight'] = torch.randn(5, 4, 3, 3)  # model has (4, 4, 3, 3)
    del src['conv.4.running_var']
    src['depth_net.extra.weight'] = torch.randn(2)
    return src


def test_summary_by_reason(caplog):
    model = _neck()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    src = _source_state_dict()
    logger = logging.getLogger('test_checkpoint_loading')
    with caplog.at_level(logging.INFO, logger='test_checkpoint_loading'):
        summary = load_state_dict_non_strict(model, src, logger=logger)
    assert summary.shape_mismatched == [('conv.3.weight', (5, 4, 3, 3), (4, 4, 3, 3))]
    assert summary.missing == ['conv.4.running_var']
    assert summary.unexpected == ['depth_net.extra.weight']
    assert len(summary.loaded) == 10
    after = model.state_dict()
    for key in summary.loaded:
        torch.testing.assert_close(after[key], src[key], rtol=0, atol=0)
    for key in ('conv.3.weight', 'conv.4.running_var'):
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)
    assert '10 loaded; skipped: 1 shape-mismatched, 1 missing, 1 unexpected' in caplog.text
    assert 'conv.3.weight [5, 4, 3, 3] -> [4, 4, 3, 3]' in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


def test_from_file_with_meta_and_module_prefix(tmp_path: Path):
    """An mmcv-1.x-style checkpoint (meta + 'module.' keys) loads with weights_only=True."""
    src = _source_state_dict()
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'epoch': 12, 'CLASSES': ('car', 'truck'), 'config': 'x = 1'},
                'state_dict': {f'module.{k}': v for k, v in src.items()}}, path)
    model = _neck()
    summary = load_checkpoint_non_strict(model, str(path), logger=None)
    assert len(summary.loaded) == 10
    assert [k for k, _, _ in summary.shape_mismatched] == ['conv.3.weight']
    torch.testing.assert_close(model.conv[0].weight, src['conv.0.weight'], rtol=0, atol=0)


def test_swin_window_size_change_skips_bias_tables():
    """Loading window-7 Swin weights into a window-12 Swin keeps everything but the tables."""
    cfg = dict(embed_dims=16, depths=(2, 2), num_heads=(1, 2), strides=(4, 2),
               out_indices=(1, ))
    src = SwinTransformer(window_size=7, **cfg).state_dict()
    model = SwinTransformer(window_size=12, **cfg)
    summary = load_state_dict_non_strict(model, src, logger=None)
    skipped = sorted(k for k, _, _ in summary.shape_mismatched)
    assert len(skipped) == 8
    assert all(k.endswith(('relative_position_bias_table', 'relative_position_index'))
               for k in skipped)
    assert not summary.missing and not summary.unexpected
    assert len(summary.loaded) == len(src) - 8


def test_mmengine_non_strict_load_also_skips_shape_mismatch(tmp_path: Path):
    """What the runner's ``load_from`` does here: mismatches are warned about, not raised."""
    src = _source_state_dict()
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': src}, path)
    model = _neck()
    kept = model.conv[3].weight.clone()
    mmengine_load_checkpoint(model, str(path), map_location='cpu', strict=False, logger=None)
    torch.testing.assert_close(model.conv[3].weight, kept, rtol=0, atol=0)
    torch.testing.assert_close(model.conv[0].weight, src['conv.0.weight'], rtol=0, atol=0)
