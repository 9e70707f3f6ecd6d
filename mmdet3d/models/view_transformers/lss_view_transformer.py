"""LSSViewTransformerBEVStereo: lift image features onto depth bins, splat them into voxels."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmdet3d.models.losses.depth_loss import depth_bce_loss, downsample_gt_depth
from mmdet3d.ops.bev_pool_v2 import bev_pool_v2, voxel_pooling_prepare_v2
from mmdet3d.registry import MODELS
from mmdet3d.structures.occ_geometry import OccGeometry

from .camera_aware import camera_mlp_input
from .depth_net import DepthNet
from .frustum_geometry import create_frustum, frustum_to_ego, grid_infos, grid_shape

STEREO_DOWNSAMPLE = 4


@MODELS.register_module()
class LSSViewTransformerBEVStereo(nn.Module):
    """Camera-aware stereo depth + lift-splat into a 3-D voxel grid (spec 2.7).

    The only state-dict entries are ``depth_net.*`` (the original's names). The frusta and grid
    bounds are non-persistent buffers.

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict): the voxels are
            its model grid, the depth bins its ``depth_bins`` (``grid_config``: e.g. x/y
            ``[-40, 40, 0.4]``, z ``[-1, 5.4, 0.4]``, depth ``[1, 45, 0.5]``).
        input_size: (H, W) of the network input image, e.g. (512, 1408).
        downsample: stride of the image features. Defaults to 16.
        in_channels: image feature channels (also the DepthNet's mid channels). Defaults to 512.
        out_channels: context channels lifted into the voxels. Defaults to 64.
        sid: spacing-increasing depth bins. Defaults to False.
        collapse_z: return (B, Z*C, Y, X) (z-major channels) instead of (B, C, Z, Y, X).
            Defaults to True (the original's default; OccFlowNet sets False).
        loss_depth_weight: weight of the depth BCE loss. Defaults to 3.0.
        depthnet_cfg: extra :class:`DepthNet` arguments (OccFlowNet: ``use_dcn=False,
            aspp_mid_channels=96, stereo=True, bias=5.0``). Defaults to None.
        floor_voxel_coords: fix of quirk 4: floor instead of truncating the voxel coordinates
            of the frustum points. Defaults to False (truncation, as in the original).
        bev_pool_impl: ``'auto'``, ``'ext'`` or ``'torch'``, passed to ``bev_pool_v2``.
            Defaults to 'auto'.
    """

    def __init__(self,
                 geometry: OccGeometry | Mapping[str, Any],
                 input_size: Sequence[int],
                 downsample: int = 16,
                 in_channels: int = 512,
                 out_channels: int = 64,
                 sid: bool = False,
                 collapse_z: bool = True,
                 loss_depth_weight: float = 3.0,
                 depthnet_cfg: Mapping | None = None,
                 floor_voxel_coords: bool = False,
                 bev_pool_impl: str = 'auto') -> None:
        super().__init__()
        self.geometry = OccGeometry.build(geometry)
        self.grid_config = self.geometry.grid_config
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.downsample = downsample
        self.out_channels = out_channels
        self.sid = sid
        self.collapse_z = collapse_z
        self.loss_depth_weight = loss_depth_weight
        self.floor_voxel_coords = floor_voxel_coords
        self.bev_pool_impl = bev_pool_impl
        lower, interval, size = grid_infos(self.grid_config)
        self.register_buffer('grid_lower_bound', lower, persistent=False)
        self.register_buffer('grid_interval', interval, persistent=False)
        self.register_buffer('grid_size', size, persistent=False)
        depth_cfg = self.grid_config['depth']
        self.register_buffer(
            'frustum', create_frustum(depth_cfg, self.input_size, downsample, sid),
            persistent=False)
        self.register_buffer(
            'cv_frustum', create_frustum(depth_cfg, self.input_size, STEREO_DOWNSAMPLE, sid),
            persistent=False)
        self.D = self.frustum.shape[0]
        self.depth_net = DepthNet(in_channels, in_channels, out_channels, self.D,
                                  **dict(depthnet_cfg or {}))

    def get_mlp_input(self, sensor2keyego: Tensor, intrins: Tensor, post_rots: Tensor,
                      post_trans: Tensor, bda: Tensor) -> Tensor:
        """(B, N, 27) camera vector; pass the KEY frame's sensor2keyego for every frame (2.4)."""
        return camera_mlp_input(sensor2keyego, intrins, post_rots, post_trans, bda)

    def get_lidar_coor(self, sensor2keyego: Tensor, intrins: Tensor, post_rots: Tensor,
                       post_trans: Tensor, bda: Tensor) -> Tensor:
        """(B, N, D, h, w, 3) main-frustum points in the augmented key-ego frame (spec 2.7.1)."""
        return frustum_to_ego(self.frustum, sensor2keyego, intrins, post_rots, post_trans, bda)

    def voxel_pooling(self, coor: Tensor, depth: Tensor, feat: Tensor) -> Tensor:
        """Splat ``depth * feat`` of every frustum point into its voxel (spec 2.7.4, 8.1-8.2).

        Args:
            coor: (B, N, D, h, w, 3) points in metres.
            depth: (B, N, D, h, w) depth probabilities.
            feat: (B, N, C, h, w) context features.

        Returns:
            (B, C, Z, Y, X), or (B, Z*C, Y, X) with ``collapse_z``; zeros if no point is inside.
        """
        size_x, size_y, size_z = grid_shape(self.grid_size)
        batch, channels = feat.shape[0], feat.shape[2]
        ranks = voxel_pooling_prepare_v2(
            coor, self.grid_lower_bound, self.grid_interval, (size_x, size_y, size_z),
            truncate=not self.floor_voxel_coords)
        if ranks is None:
            bev_feat = feat.new_zeros(batch, channels, size_z, size_y, size_x)
        else:
            ranks_bev, ranks_depth, ranks_feat, interval_starts, interval_lengths = ranks
            # Under autocast the depth softmax is float32 and the context float16: pool both in
            # the wider dtype (the original op casts both to float32).
            dtype = torch.promote_types(depth.dtype, feat.dtype)
            feat = feat.permute(0, 1, 3, 4, 2).contiguous()  # (B, N, C, h, w) -> (B, N, h, w, C)
            bev_feat = bev_pool_v2(
                depth.to(dtype).contiguous(), feat.to(dtype), ranks_depth, ranks_feat, ranks_bev,
                (batch, size_z, size_y, size_x, channels), interval_starts, interval_lengths,
                impl=self.bev_pool_impl)  # (B, C, Z, Y, X)
        if self.collapse_z:
            # (B, C, Z, Y, X) -> (B, Z, C, Y, X) -> (B, Z*C, Y, X)
            bev_feat = bev_feat.transpose(1, 2).reshape(batch, size_z * channels, size_y, size_x)
        return bev_feat

    def forward(self,
                img_feats: Tensor,
                sensor2keyego: Tensor,
                intrins: Tensor,
                post_rots: Tensor,
                post_trans: Tensor,
                bda: Tensor,
                mlp_input: Tensor,
                stereo_curr: Tensor | None = None,
                stereo_prev: Tensor | None = None,
                k2s_sensor: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One frame of the temporal loop: depth, context, lift-splat.

        Per-frame inputs as :func:`~.temporal_geometry.prepare_temporal_inputs` splits them
        (``ego2global`` is not needed: the temporal alignment is inside ``sensor2keyego``)::

            f = frame index (0 = key frame t, 1 = t-1)
            mlp_input = vt.get_mlp_input(inputs.sensor2keyegos[0], inputs.intrins[f],
                                         inputs.post_rots[f], inputs.post_trans[f], inputs.bda)
            bev_feat, depth = vt(neck_feat, inputs.sensor2keyegos[f], inputs.intrins[f],
                                 inputs.post_rots[f], inputs.post_trans[f], inputs.bda, mlp_input,
                                 stereo_curr=stage0_feat[f], stereo_prev=stage0_feat[f + 1],
                                 k2s_sensor=inputs.curr2adjsensors[f])

        Args:
            img_feats: (B, N, C_in, h, w) image-neck features at stride ``downsample``.
            sensor2keyego: (B, N, 4, 4) camera of this frame -> key ego.
            intrins: (B, N, 3, 3) K of this frame.
            post_rots: (B, N, 3, 3) image augmentation of this frame.
            post_trans: (B, N, 3) image augmentation translation of this frame.
            bda: (B, 3, 3) BEV augmentation.
            mlp_input: (B, N, 27) from :meth:`get_mlp_input` (key-frame extrinsics).
            stereo_curr: (B*N, C0, H/4, W/4) Swin stage-0 feature of this frame (stereo only).
            stereo_prev: (B*N, C0, H/4, W/4) stage-0 feature of the next older frame, or None
                for a zero cost volume (stereo only).
            k2s_sensor: (B, N, 4, 4) camera n of this frame -> camera n of the older frame
                (``curr2adjsensors[f]``; stereo only).

        Returns:
            ``(bev_feat, depth)``: bev_feat (B, C_out, Z, Y, X) (or (B, Z*C_out, Y, X) with
            ``collapse_z``); depth (B*N, D, h, w) softmax over the D bins.
        """
        batch, cams, channels, height, width = img_feats.shape
        x = img_feats.reshape(batch * cams, channels, height, width)
        cost_volume = None
        if self.depth_net.stereo:
            if stereo_curr is None:
                raise ValueError('the stereo view transformer needs stereo_curr')
            # the grid normalises by 4x the stereo feature size, as the original does
            hf, wf = stereo_curr.shape[-2:]
            cost_volume = self.depth_net.cost_volume(
                self.cv_frustum, stereo_prev, stereo_curr, k2s_sensor, intrins, post_rots,
                post_trans, (hf * STEREO_DOWNSAMPLE, wf * STEREO_DOWNSAMPLE))
        x = self.depth_net(x, mlp_input, cost_volume)  # (B*N, D + C_out, h, w)
        depth = x[:, :self.D].softmax(dim=1)  # (B*N, D, h, w)
        tran_feat = x[:, self.D:self.D + self.out_channels]  # (B*N, C_out, h, w)
        coor = self.get_lidar_coor(sensor2keyego, intrins, post_rots, post_trans, bda)
        bev_feat = self.voxel_pooling(
            coor, depth.view(batch, cams, self.D, height, width),
            tran_feat.reshape(batch, cams, self.out_channels, height, width))
        return bev_feat, depth

    def get_depth_loss(self, gt_depth: Tensor, depth: Tensor) -> dict[str, Tensor]:
        """Depth-distribution BCE of the key frame (spec 2.7.5).

        Args:
            gt_depth: (B, N, H, W) sparse z-depth in metres (0 = no point).
            depth: (B*N, D, h, w) softmax depth of the key frame.

        Returns:
            ``{'loss_depth': ()}``, already weighted by ``loss_depth_weight``.
        """
        labels = downsample_gt_depth(gt_depth, self.downsample, self.grid_config['depth'],
                                     self.D, self.sid)
        return {'loss_depth': depth_bce_loss(labels, depth, self.loss_depth_weight)}
