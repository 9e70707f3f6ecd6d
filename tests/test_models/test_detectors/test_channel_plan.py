"""Channel counts derived by the detector equal the original config's explicit values."""
from __future__ import annotations

import pytest

from mmdet3d.models.detectors.channel_plan import with_derived_channels


def _paper_free_choices():
    """The choices of the paper config (Swin-B, numC_Trans 32), nothing derived stated."""
    return (dict(embed_dims=128, out_indices=[2, 3]), dict(out_channels=512),
            dict(out_channels=32), dict(num_layer=[1]), dict(num_layer=[1, 2, 4]), dict())


def test_paper_channels_are_the_originals():
    """The original config: FPN_LSS in 512 + 1024, LSS in 512, CustomResNet3D(32, [32]),
    CustomResNet3D(numC_Trans * 2, [32, 64, 128]), LSSFPN3D(224, 32)."""
    neck, vt, pre, encoder, encoder_neck = with_derived_channels(*_paper_free_choices(),
                                                                 num_adj=1)
    assert neck['in_channels'] == 512 + 1024 and vt['in_channels'] == 512
    assert (pre['numC_input'], pre['num_channels']) == (32, [32])
    assert (encoder['numC_input'], encoder['num_channels']) == (64, [32, 64, 128])
    assert (encoder_neck['in_channels'], encoder_neck['out_channels']) == (224, 32)


def test_stated_values_are_kept_and_inputs_not_modified():
    backbone, neck, vt, pre, encoder, encoder_neck = _paper_free_choices()
    neck['in_channels'] = 7
    encoder['num_channels'] = [5, 6, 7]
    out = with_derived_channels(backbone, neck, vt, pre, encoder, encoder_neck, num_adj=2)
    assert out[0]['in_channels'] == 7 and out[3]['numC_input'] == 96
    assert out[4]['in_channels'] == 18  # the sum of the stated encoder stages
    assert 'in_channels' not in vt and 'numC_input' not in pre  # copies, not the configs


def test_missing_choice_is_named():
    backbone, neck, vt, pre, encoder, encoder_neck = _paper_free_choices()
    del vt['out_channels']
    with pytest.raises(KeyError, match='img_view_transformer needs "out_channels"'):
        with_derived_channels(backbone, neck, vt, pre, encoder, encoder_neck, num_adj=1)
