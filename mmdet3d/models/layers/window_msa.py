"""(Shifted) window multi-head self-attention of Swin Transformer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmdet3d.models.layers.drop_path import DropPath


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into the (2w-1)^2 bias table for every (query, key) pair of a w x w window.

    Entry [i, j] = (h_i - h_j + w - 1) * (2w - 1) + (x_i - x_j + w - 1), tokens row-major.

    Returns:
        (w*w, w*w) int64.
    """
    coords = torch.stack(torch.meshgrid(
        torch.arange(window_size), torch.arange(window_size), indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + window_size - 1  # (2, w*w, w*w)
    return rel[0] * (2 * window_size - 1) + rel[1]


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of w -> (B * H/w * W/w, w*w, C), windows row-major."""
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
    # (B, nH, w, nW, w, C) -> (B, nH, nW, w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, C)


def window_reverse(windows: torch.Tensor, window_size: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nH * nW, w*w, C) -> (B, H, W, C)."""
    C = windows.shape[-1]
    x = windows.view(-1, H // window_size, W // window_size, window_size, window_size, C)
    # (B, nH, nW, w, w, C) -> (B, nH, w, nW, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)


def shifted_window_mask(H: int, W: int, window_size: int, shift_size: int,
                        device: torch.device | None = None) -> torch.Tensor:
    """Additive attention mask for the cyclically shifted (padded) H x W map.

    Tokens of the same window that came from different regions of the rolled map get -100.

    Returns:
        (H/w * W/w, w*w, w*w) float32 with values 0 or -100.
    """
    region = torch.zeros(1, H, W, 1, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for h in bounds:
        for w in bounds:
            region[:, h, w, :] = label
            label += 1
    region = window_partition(region, window_size).squeeze(-1)  # (nW, w*w)
    diff = region[:, None, :] - region[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowMSA(nn.Module):
    """Multi-head self-attention inside non-overlapping windows with relative position bias.

    Args:
        embed_dims: token channels C.
        num_heads: attention heads (head dim C / heads, scale head_dim^-0.5 unless qk_scale).
        window_size: window side w.
        qkv_bias: bias on the qkv projection. Defaults to True.
        qk_scale: override of the query scale. Defaults to None.
        attn_drop_rate: dropout on the attention weights. Defaults to 0.
        proj_drop_rate: dropout after the output projection. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int,
                 qkv_bias: bool = True,
                 qk_scale: float | None = None,
                 attn_drop_rate: float = 0.0,
                 proj_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = qk_scale or (embed_dims // num_heads)**-0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1)**2, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        """Truncated-normal (std 0.02) relative position bias table."""
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02, a=-2.0, b=2.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend within each window.

        Args:
            x: (B * nW, N, C) tokens, N = w*w, windows of one image consecutive.
            mask: (nW, N, N) additive mask or None.

        Returns:
            (B * nW, N, C).
        """
        B, N, C = x.shape
        # (B, N, 3C) -> (3, B, heads, N, C/heads)
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(
            2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)  # (B, heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(N, N, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B // nW, nW, self.num_heads, N, N) + mask[None, :, None]
            attn = attn.view(B, self.num_heads, N, N)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class ShiftWindowMSA(nn.Module):
    """Window attention on a token map, with zero padding, cyclic shift and DropPath.

    The map is zero-padded at the bottom/right to a multiple of the window (padded tokens are not
    masked, as in the original), rolled by ``-shift_size`` when shifting, attended per window
    (with the -100 region mask when shifting), rolled back and cropped.

    Args:
        embed_dims: token channels C.
        num_heads: attention heads.
        window_size: window side w.
        shift_size: cyclic shift (0 or w // 2). Defaults to 0.
        qkv_bias: bias on the qkv projection. Defaults to True.
        qk_scale: override of the query scale. Defaults to None.
        attn_drop_rate: dropout on the attention weights. Defaults to 0.
        proj_drop_rate: dropout after the output projection. Defaults to 0.
        drop_path_rate: stochastic-depth rate of this branch. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int,
                 shift_size: int = 0,
                 qkv_bias: bool = True,
                 qk_scale: float | None = None,
                 attn_drop_rate: float = 0.0,
                 proj_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f'shift_size {shift_size} must be in [0, {window_size})')
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size, qkv_bias, qk_scale,
                               attn_drop_rate, proj_drop_rate)
        self.drop = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        """x: (B, H*W, C) tokens of an H x W map (hw_shape) -> (B, H*W, C)."""
        B, L, C = x.shape
        H, W = hw_shape
        if L != H * W:
            raise ValueError(f'{L} tokens do not form a {H}x{W} map')
        ws, shift = self.window_size, self.shift_size
        x = x.view(B, H, W, C)
        pad_b, pad_r = (ws - H % ws) % ws, (ws - W % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        Hp, Wp = H + pad_b, W + pad_r
        mask = None
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(Hp, Wp, ws, shift, device=x.device)
        windows = self.w_msa(window_partition(x, ws), mask=mask)  # (B * nW, w*w, C)
        x = window_reverse(windows, ws, Hp, Wp)
        if shift > 0:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        x = x[:, :H, :W].reshape(B, H * W, C)
        return self.drop(x)
