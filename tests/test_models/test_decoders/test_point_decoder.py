"""PointDecoder: layout, state-dict names/shapes of the original, init, activation."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from mmdet3d.models.decoders.point_decoder import PointDecoder
from mmdet3d.registry import MODELS


def _original_shapes(reference_dir, prefix: str) -> dict[str, tuple[int, ...]]:
    manifest = json.loads((reference_dir / 'occflownet-state-dict-keys.json').read_text())
    entries = manifest['keys']
    out = {}
    for name, info in entries.items():
        if name.startswith(prefix):
            out[name[len(prefix):]] = tuple(info['shape'])
    return out


@pytest.mark.parametrize('prefix,num_classes,act', [
    ('density_decoder.', 1, dict(type='Sigmoid')),
    ('semantic_decoder.', 17, None),
])
def test_state_dict_matches_original(golden_dir, prefix, num_classes, act):
    expected = _original_shapes(golden_dir.parent, prefix)
    assert expected, 'no decoder keys found in the manifest'
    decoder = MODELS.build(dict(type='PointDecoder', in_channels=64, embed_dims=256,
                                num_hidden_layers=3, num_classes=num_classes,
                                final_act_cfg=act))
    got = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert got == expected


def test_forward_matches_manual_mlp_and_init():
    decoder = PointDecoder(in_channels=8, embed_dims=16, num_hidden_layers=3, num_classes=1,
                           final_act_cfg=dict(type='Sigmoid'))
    linears = [m for m in decoder.layers if isinstance(m, nn.Linear)]
    for lin in linears:
        assert torch.count_nonzero(lin.bias) == 0
        bound = (6.0 / (lin.in_features + lin.out_features)) ** 0.5
        assert lin.weight.abs().max() <= bound
        assert lin.weight.abs().max() > 0.5 * bound
    for lin in linears:
        nn.init.normal_(lin.bias)
    feats = torch.randn(2, 3, 4, 5, 8)
    x = feats
    for lin in linears[:-1]:
        x = torch.relu(x @ lin.weight.T + lin.bias)
    expected = torch.sigmoid(x @ linears[-1].weight.T + linears[-1].bias)
    out = decoder(feats)
    assert out.shape == (2, 3, 4, 5, 1)
    torch.testing.assert_close(out, expected)


def test_rejects_unknown_activation():
    with pytest.raises(ValueError):
        PointDecoder(final_act_cfg=dict(type='ReLU'))


def test_prior_probability_initialisation():
    p = 0.02
    decoder = PointDecoder(in_channels=8, embed_dims=16, num_hidden_layers=2, num_classes=1,
                           final_act_cfg=dict(type='Sigmoid'), init_prior_prob=p)
    assert decoder.layers[-2].bias.item() == pytest.approx(math.log(p / (1 - p)))
    # zero features pass the zero-bias hidden layers as zeros: the output is the prior itself
    assert decoder(torch.zeros(3, 8)).flatten().tolist() == pytest.approx([p] * 3)
    decoder.init_weights()  # re-initialising (as mmengine's runner does) keeps the prior
    assert decoder(torch.zeros(1, 8)).item() == pytest.approx(p)
    plain = PointDecoder(in_channels=8, embed_dims=16, num_hidden_layers=2, num_classes=1,
                         final_act_cfg=dict(type='Sigmoid'))
    assert plain(torch.zeros(1, 8)).item() == 0.5  # the original: zero bias
    assert decoder.state_dict().keys() == plain.state_dict().keys()
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match='init_prior_prob'):
            PointDecoder(init_prior_prob=bad)
