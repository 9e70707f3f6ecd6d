"""Swin Transformer image backbone with BEVDet's stereo stage-0 output (spec 2.5)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmdet3d.models.layers.patch_embed import PatchEmbed
from mmdet3d.models.layers.patch_merging import PatchMerging
from mmdet3d.models.layers.swin_block import SwinBlockSequence
from mmdet3d.models.layers.window_msa import WindowMSA
from mmdet3d.registry import MODELS


@MODELS.register_module()
class SwinTransformer(nn.Module):
    """Swin Transformer (mmseg layout) returning (B, C, H, W) feature maps.

    State-dict keys follow the BEVDet checkpoints: ``patch_embed.{projection,norm}``,
    ``stages.i.blocks.j.{norm1,attn.w_msa.*,norm2,ffn.layers.*}``, ``stages.i.downsample.*`` and
    ``norm{i}`` for every i in ``out_indices``. Stage i has ``embed_dims * 2**i`` channels at
    stride ``prod(strides[:i + 1])``.

    Args:
        in_channels: image channels. Defaults to 3.
        embed_dims: stage-0 channels. Defaults to 96.
        patch_size: patch-embedding patch side; must equal ``strides[0]``. Defaults to 4.
        window_size: attention window side. Defaults to 7.
        mlp_ratio: FFN hidden / token channels. Defaults to 4.
        depths: blocks per stage. Defaults to (2, 2, 6, 2).
        num_heads: attention heads per stage. Defaults to (3, 6, 12, 24).
        strides: patch-embedding stride, then each PatchMerging stride. Defaults to (4, 2, 2, 2).
        out_indices: stages whose LayerNorm-ed output is returned. Defaults to (0, 1, 2, 3).
        qkv_bias: bias on the qkv projections. Defaults to True.
        qk_scale: override of the query scale. Defaults to None.
        patch_norm: LayerNorm in the patch embedding and merging. Defaults to True.
        drop_rate: dropout after the embedding, projections and FFN. Defaults to 0.
        attn_drop_rate: attention dropout. Defaults to 0.
        drop_path_rate: stochastic depth, linspace(0, rate, sum(depths)) over the blocks.
            Defaults to 0.1.
        with_cp: gradient-checkpoint every block (memory only). Defaults to True.
        return_stereo_feat: prepend the stage-0 output (before merging, no norm). Defaults to
            False.
        output_missing_index_as_none: put None in place of stages not in ``out_indices``.
            Defaults to False.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 window_size: int = 7,
                 mlp_ratio: int = 4,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 qkv_bias: bool = True,
                 qk_scale: float | None = None,
                 patch_norm: bool = True,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1,
                 with_cp: bool = True,
                 return_stereo_feat: bool = False,
                 output_missing_index_as_none: bool = False) -> None:
        super().__init__()
        num_stages = len(depths)
        if len(num_heads) != num_stages or len(strides) != num_stages:
            raise ValueError('depths, num_heads and strides must have the same length')
        if strides[0] != patch_size:
            raise ValueError(f'strides[0] ({strides[0]}) must equal patch_size ({patch_size})')
        self.out_indices = tuple(out_indices)
        self.return_stereo_feat = return_stereo_feat
        self.output_missing_index_as_none = output_missing_index_as_none
        self.num_features = [embed_dims * 2**i for i in range(num_stages)]

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, with_norm=patch_norm)
        self.drop_after_pos = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        channels = embed_dims
        for i in range(num_stages):
            downsample = None
            if i < num_stages - 1:
                downsample = PatchMerging(
                    channels, 2 * channels, stride=strides[i + 1], with_norm=patch_norm)
            self.stages.append(
                SwinBlockSequence(
                    channels,
                    num_heads[i],
                    mlp_ratio * channels,
                    depths[i],
                    window_size=window_size,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rates=dpr[sum(depths[:i]):sum(depths[:i + 1])],
                    downsample=downsample,
                    with_cp=with_cp))
            if downsample is not None:
                channels = downsample.out_channels
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))

    def init_weights(self) -> None:
        """Trunc-normal (std 0.02) Linear weights and bias tables, zero Linear biases, LN (1, 0).

        The patch-embedding conv keeps PyTorch's default initialisation.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowMSA):
                m.init_weights()

    @staticmethod
    def _to_map(x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        # (B, H*W, C) -> (B, C, H, W)
        return x.view(-1, *hw_shape, x.shape[-1]).permute(0, 3, 1, 2).contiguous()

    def forward_stereo_feat(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding, dropout and the stage-0 blocks only (the stereo reference pass).

        Args:
            x: (B, C_in, H, W) images.

        Returns:
            (B, embed_dims, H/4, W/4) stage-0 output before merging, without norm.
        """
        x, hw_shape = self.patch_embed(x)
        x = self.stages[0].forward_blocks(self.drop_after_pos(x), hw_shape)
        return self._to_map(x, hw_shape)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        """Extract multi-scale features.

        Args:
            x: (B, C_in, H, W) images (zero-padded to a multiple of the patch size).

        Returns:
            With ``return_stereo_feat`` first the stage-0 output (B, embed_dims, H/4, W/4) without
            norm; then for each stage i in ``out_indices`` (ascending stage order) ``norm{i}`` of
            its output as (B, embed_dims * 2**i, H / stride_i, W / stride_i).
        """
        x, hw_shape = self.patch_embed(x)
        x = self.drop_after_pos(x)
        outs: list[torch.Tensor | None] = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw = stage(x, hw_shape)
            if i == 0 and self.return_stereo_feat:
                outs.append(self._to_map(out, out_hw))
            if i in self.out_indices:
                outs.append(self._to_map(getattr(self, f'norm{i}')(out), out_hw))
            elif self.output_missing_index_as_none:
                outs.append(None)
        return outs
