"""Swin Transformer blocks: LN -> (shifted) window MSA, LN -> FFN, and a stage of them."""
from __future__ import annotations

import torch
import torch.utils.checkpoint as cp
from torch import nn

from mmdet3d.models.layers.drop_path import DropPath
from mmdet3d.models.layers.patch_merging import PatchMerging
from mmdet3d.models.layers.window_msa import ShiftWindowMSA


class SwinFFN(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout, added to the identity through DropPath.

    Keys ``layers.0.0`` and ``layers.1`` (mmcv FFN layout).

    Args:
        embed_dims: token channels C.
        feedforward_channels: hidden channels.
        drop_rate: dropout after the activation and after the second Linear. Defaults to 0.
        drop_path_rate: stochastic-depth rate of this branch. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 feedforward_channels: int,
                 drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(
                nn.Linear(embed_dims, feedforward_channels), nn.GELU(), nn.Dropout(drop_rate)),
            nn.Linear(feedforward_channels, embed_dims), nn.Dropout(drop_rate))
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """x, identity: (B, L, C) -> identity + DropPath(FFN(x)), (B, L, C)."""
        return identity + self.drop_path(self.layers(x))


class SwinBlock(nn.Module):
    """One Swin block; gradient-checkpointed when ``with_cp`` and the input requires grad.

    Args:
        embed_dims: token channels C.
        num_heads: attention heads.
        feedforward_channels: FFN hidden channels.
        window_size: window side w. Defaults to 7.
        shift: use the shifted window (shift w // 2). Defaults to False.
        qkv_bias: bias on the qkv projection. Defaults to True.
        qk_scale: override of the query scale. Defaults to None.
        drop_rate: dropout after projections and in the FFN. Defaults to 0.
        attn_drop_rate: dropout on the attention weights. Defaults to 0.
        drop_path_rate: stochastic-depth rate of both residual branches. Defaults to 0.
        with_cp: gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 window_size: int = 7,
                 shift: bool = False,
                 qkv_bias: bool = True,
                 qk_scale: float | None = None,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(
            embed_dims,
            num_heads,
            window_size,
            shift_size=window_size // 2 if shift else 0,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=drop_rate,
            drop_path_rate=drop_path_rate)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = SwinFFN(embed_dims, feedforward_channels, drop_rate, drop_path_rate)

    def _inner_forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), hw_shape)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        """x: (B, H*W, C) tokens of the H x W map hw_shape -> (B, H*W, C)."""
        if self.with_cp and x.requires_grad and torch.is_grad_enabled():
            return cp.checkpoint(self._inner_forward, x, hw_shape, use_reentrant=False)
        return self._inner_forward(x, hw_shape)


class SwinBlockSequence(nn.Module):
    """A Swin stage: ``depth`` blocks alternating plain/shifted windows, then optional merging.

    Args:
        embed_dims: token channels C.
        num_heads: attention heads.
        feedforward_channels: FFN hidden channels.
        depth: number of blocks.
        window_size: window side w. Defaults to 7.
        qkv_bias: bias on the qkv projection. Defaults to True.
        qk_scale: override of the query scale. Defaults to None.
        drop_rate: dropout rate. Defaults to 0.
        attn_drop_rate: attention dropout rate. Defaults to 0.
        drop_path_rates: per-block stochastic-depth rates (length ``depth``); None means 0.
            Defaults to None.
        downsample: PatchMerging applied after the blocks, or None. Defaults to None.
        with_cp: gradient checkpointing of every block. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 depth: int,
                 window_size: int = 7,
                 qkv_bias: bool = True,
                 qk_scale: float | None = None,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rates: list[float] | None = None,
                 downsample: PatchMerging | None = None,
                 with_cp: bool = False) -> None:
        super().__init__()
        drop_path_rates = [0.0] * depth if drop_path_rates is None else drop_path_rates
        if len(drop_path_rates) != depth:
            raise ValueError(f'{len(drop_path_rates)} drop-path rates for {depth} blocks')
        self.blocks = nn.ModuleList(
            SwinBlock(
                embed_dims,
                num_heads,
                feedforward_channels,
                window_size=window_size,
                shift=i % 2 == 1,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate,
                drop_path_rate=drop_path_rates[i],
                with_cp=with_cp) for i in range(depth))
        self.downsample = downsample

    def forward_blocks(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        """Run the blocks only: (B, H*W, C) -> (B, H*W, C)."""
        for block in self.blocks:
            x = block(x, hw_shape)
        return x

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]
                ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor, tuple[int, int]]:
        """Blocks then merging.

        Args:
            x: (B, H*W, C) tokens of the H x W map ``hw_shape``.

        Returns:
            (next-stage tokens (B, H'*W', C'), (H', W'), stage output before merging
            (B, H*W, C), (H, W)); without downsample the first pair repeats the second.
        """
        out = self.forward_blocks(x, hw_shape)
        if self.downsample is None:
            return out, hw_shape, out, hw_shape
        down, down_hw = self.downsample(out, hw_shape)
        return down, down_hw, out, hw_shape
