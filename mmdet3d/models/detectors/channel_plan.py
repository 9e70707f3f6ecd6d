"""The channel counts of the OccFlowNet modules, derived once from the free choices.

The configs choose the image backbone (its ``embed_dims`` and ``out_indices``), the neck's
``out_channels``, the view transformer's ``out_channels`` (numC_Trans, C) and the 3-D stages
(``num_layer``); every channel count that follows from them is filled in here, as the original
configs computed it from numC_Trans. A value a config does state is kept.
"""
from __future__ import annotations


def with_derived_channels(img_backbone: dict, img_neck: dict, img_view_transformer: dict,
                          pre_process: dict | None, img_bev_encoder_backbone: dict,
                          img_bev_encoder_neck: dict, num_adj: int
                          ) -> tuple[dict, dict, dict | None, dict, dict]:
    """Copies of the neck, view transformer and 3-D configs with their channels filled in.

    - neck ``in_channels``: the backbone's output stages, ``embed_dims * 2**i`` summed over
      ``out_indices`` (Swin stage i has ``embed_dims * 2**i`` channels);
    - view transformer ``in_channels``: the neck's ``out_channels``;
    - ``pre_process``: C in, C per stage;
    - encoder backbone: ``C * (num_adj + 1)`` in (the fused frames), ``C * 2**i`` in stage i;
    - encoder neck: the sum of the encoder stages in, C out.

    Returns:
        ``(img_neck, img_view_transformer, pre_process, img_bev_encoder_backbone,
        img_bev_encoder_neck)``.

    Raises:
        KeyError: naming the key a derivation needs and the config lacks.
    """
    def need(cfg: dict, key: str, what: str):
        if key not in cfg:
            raise KeyError(f'{what} needs "{key}" to derive the channel counts')
        return cfg[key]

    img_neck = dict(img_neck)
    if 'in_channels' not in img_neck:
        embed_dims = need(img_backbone, 'embed_dims', 'img_backbone')
        img_neck['in_channels'] = sum(embed_dims * 2 ** i
                                      for i in need(img_backbone, 'out_indices', 'img_backbone'))
    view_transformer = dict(img_view_transformer)
    view_transformer.setdefault('in_channels', need(img_neck, 'out_channels', 'img_neck'))
    num_trans = need(view_transformer, 'out_channels', 'img_view_transformer')
    if pre_process is not None:
        pre_process = dict(pre_process)
        pre_process.setdefault('numC_input', num_trans)
        pre_process.setdefault('num_channels',
                               [num_trans] * len(need(pre_process, 'num_layer', 'pre_process')))
    encoder = dict(img_bev_encoder_backbone)
    encoder.setdefault('numC_input', num_trans * (num_adj + 1))
    encoder.setdefault('num_channels', [num_trans * 2 ** i for i in range(
        len(need(encoder, 'num_layer', 'img_bev_encoder_backbone')))])
    encoder_neck = dict(img_bev_encoder_neck)
    encoder_neck.setdefault('in_channels', sum(encoder['num_channels']))
    encoder_neck.setdefault('out_channels', num_trans)
    return img_neck, view_transformer, pre_process, encoder, encoder_neck
