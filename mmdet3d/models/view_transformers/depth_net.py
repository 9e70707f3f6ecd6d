"""Camera-aware stereo DepthNet: depth logits and context features per camera (spec 2.7.2-2.7.3)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdet3d.models.layers.basic_block import BasicBlock

from .aspp import ASPP
from .camera_aware import MLP_INPUT_DIM, SELayer, Mlp
from .stereo_cost_volume import stereo_cost_volume, stereo_sampling_grid


class DepthNet(nn.Module):
    """BEVDepth/BEVStereo depth network with the original's module names.

    ``reduce_conv`` (3x3 conv + BN + ReLU) -> two camera-aware SE branches: context
    (``context_mlp``, ``context_se``, 1x1 ``context_conv``) and depth (``depth_mlp``,
    ``depth_se``); with ``stereo`` the softmaxed cost volume (stride 4, no grad) passes
    ``cost_volumn_net`` (two stride-2 conv + BN, no ReLU) and is concatenated to the depth
    features; ``depth_conv`` = 3 BasicBlocks, optional ASPP, 1x1 conv to the depth logits.
    Layers keep PyTorch's default init apart from the ASPP (Kaiming normal).

    Args:
        in_channels: image feature channels.
        mid_channels: working channels.
        context_channels: context output channels (the lift-splat feature width).
        depth_channels: number of depth bins D.
        use_dcn: deformable conv after the ASPP; not available (no mmcv), must be False.
            Defaults to False.
        use_aspp: append the ASPP to ``depth_conv``. Defaults to True.
        with_cp: gradient-checkpoint ``depth_conv``. Defaults to False.
        stereo: use the stereo cost volume. Defaults to False.
        bias: cost added at invalid stereo samples (only with ``stereo``). Defaults to 0.0.
        aspp_mid_channels: ASPP branch channels; negative means ``mid_channels``. Defaults to -1.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 context_channels: int,
                 depth_channels: int,
                 use_dcn: bool = False,
                 use_aspp: bool = True,
                 with_cp: bool = False,
                 stereo: bool = False,
                 bias: float = 0.0,
                 aspp_mid_channels: int = -1) -> None:
        super().__init__()
        if use_dcn:
            raise NotImplementedError('DepthNet(use_dcn=True) needs mmcv DCN, which is not used')
        self.depth_channels = depth_channels
        self.stereo = stereo
        self.bias = bias
        self.with_cp = with_cp
        self.reduce_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
        )
        self.context_conv = nn.Conv2d(mid_channels, context_channels, kernel_size=1)
        self.bn = nn.BatchNorm1d(MLP_INPUT_DIM)
        self.depth_mlp = Mlp(MLP_INPUT_DIM, mid_channels, mid_channels)
        self.depth_se = SELayer(mid_channels)
        self.context_mlp = Mlp(MLP_INPUT_DIM, mid_channels, mid_channels)
        self.context_se = SELayer(mid_channels)
        block_in = mid_channels
        first_downsample = None
        if stereo:
            block_in += depth_channels
            first_downsample = nn.Conv2d(block_in, mid_channels, kernel_size=1)
            self.cost_volumn_net = nn.Sequential(
                nn.Conv2d(depth_channels, depth_channels, kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(depth_channels),
                nn.Conv2d(depth_channels, depth_channels, kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(depth_channels),
            )
        layers: list[nn.Module] = [
            BasicBlock(block_in, mid_channels, downsample=first_downsample),
            BasicBlock(mid_channels, mid_channels),
            BasicBlock(mid_channels, mid_channels),
        ]
        if use_aspp:
            layers.append(
                ASPP(mid_channels, mid_channels if aspp_mid_channels < 0 else aspp_mid_channels))
        layers.append(nn.Conv2d(mid_channels, depth_channels, kernel_size=1))
        self.depth_conv = nn.Sequential(*layers)

    def cost_volume(self, stereo_frustum: Tensor, prev: Tensor | None, curr: Tensor,
                    k2s_sensor: Tensor | None, intrins: Tensor, post_rots: Tensor,
                    post_trans: Tensor, image_size: tuple[int, int]) -> Tensor:
        """Softmaxed stereo cost volume at stride 4, without gradient.

        Args:
            stereo_frustum: (D, H/4, W/4, 3) stereo frustum.
            prev: (B*N, C0, H/4, W/4) stage-0 feature of the adjacent frame, or None (zeros).
            curr: (B*N, C0, H/4, W/4) stage-0 feature of the current frame.
            k2s_sensor: (B, N, 4, 4) current -> adjacent camera (ignored if ``prev`` is None).
            intrins, post_rots, post_trans: (B, N, 3, 3), (B, N, 3, 3), (B, N, 3) of the frame.
            image_size: (H, W) of the input image.

        Returns:
            (B*N, D, H/4, W/4).
        """
        num_bins, height, width, _ = stereo_frustum.shape
        if prev is None:
            return curr.new_zeros(curr.shape[0], num_bins, height, width)
        with torch.no_grad():
            grid = stereo_sampling_grid(stereo_frustum.to(curr), k2s_sensor, intrins, post_rots,
                                        post_trans, image_size)
            return stereo_cost_volume(prev, curr, grid, num_bins, self.bias)

    def forward(self, x: Tensor, mlp_input: Tensor, cost_volume: Tensor | None = None) -> Tensor:
        """Depth logits and context of every camera image.

        Args:
            x: (B*N, C_in, h, w) image features.
            mlp_input: (B, N, 27) camera parameters (:func:`camera_mlp_input`).
            cost_volume: (B*N, D, 4h, 4w) of :meth:`cost_volume`; required iff ``stereo``.

        Returns:
            (B*N, D + C_ctx, h, w): channels [0, D) depth logits, [D, D + C_ctx) context.
        """
        mlp_input = self.bn(mlp_input.reshape(-1, mlp_input.shape[-1]))  # (B*N, 27)
        x = self.reduce_conv(x)
        context_gate = self.context_mlp(mlp_input)[..., None, None]  # (B*N, mid, 1, 1)
        context = self.context_conv(self.context_se(x, context_gate))
        depth_gate = self.depth_mlp(mlp_input)[..., None, None]  # (B*N, mid, 1, 1)
        depth = self.depth_se(x, depth_gate)
        if self.stereo:
            if cost_volume is None:
                raise ValueError('a stereo DepthNet needs the cost volume')
            depth = torch.cat([depth, self.cost_volumn_net(cost_volume)], dim=1)  # (B*N, mid+D)
        if self.with_cp and depth.requires_grad:
            depth = checkpoint(self.depth_conv, depth, use_reentrant=False)
        else:
            depth = self.depth_conv(depth)
        return torch.cat([depth, context], dim=1)
