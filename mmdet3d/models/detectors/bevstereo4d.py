"""``BEVStereo4D``: multi-frame camera encoder that turns images into voxel features.

Spec 2.3-2.8: split the frames, express every camera in the key ego frame, run the reference
frames (t-2: stereo feature only, t-1: full pass) without gradient, the key frame t with
gradient, concatenate the per-frame voxel features [F_t-1, F_t] and encode them in 3-D.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from mmengine.model import BaseModel
from torch import Tensor

from mmdet3d.models.view_transformers.temporal_geometry import prepare_temporal_inputs
from mmdet3d.registry import MODELS
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.occ_geometry import OccGeometry, with_geometry

from .channel_plan import with_derived_channels


class BEVStereo4D(BaseModel):
    """Image backbone + neck, stereo LSS view transformer, temporal fusion, 3-D BEV encoder.

    Sub-module attribute names are the original's (``img_backbone``, ``img_neck``,
    ``img_view_transformer``, ``pre_process_net``, ``img_bev_encoder_backbone``,
    ``img_bev_encoder_neck``) so that BEVDet and OccFlowNet checkpoints load by name.

    Args:
        geometry: the scene geometry (an ``OccGeometry`` or its config dict), handed to the
            view transformer; its ``adjacent_frames`` give the frames fused:
            ``num_adj = len(adjacent_frames) - 1`` adjacent frames with the key frame, the
            stereo reference frame on top.
        img_backbone: config of the image backbone (returns the stereo stage-0 feature first).
        img_neck: config of the image neck (e.g. ``FPN_LSS``).
        img_view_transformer: config of ``LSSViewTransformerBEVStereo``.
        img_bev_encoder_backbone: config of the 3-D encoder backbone (``CustomResNet3D``).
        img_bev_encoder_neck: config of the 3-D encoder neck (``LSSFPN3D``).
        pre_process: config of the per-frame voxel pre-processing net. Defaults to None.
        The channel counts that follow from the backbone, the neck's and the view transformer's
        ``out_channels`` may be left out of the configs (:func:`with_derived_channels`).
        data_preprocessor: config of the data preprocessor. Defaults to None.
    """

    def __init__(self,
                 geometry: OccGeometry | Mapping[str, Any],
                 img_backbone: dict,
                 img_neck: dict,
                 img_view_transformer: dict,
                 img_bev_encoder_backbone: dict,
                 img_bev_encoder_neck: dict,
                 pre_process: dict | None = None,
                 data_preprocessor: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.geometry = OccGeometry.build(geometry)
        num_adj = self.geometry.num_adj
        img_view_transformer = with_geometry(img_view_transformer, self.geometry,
                                             'img_view_transformer')
        (img_neck, img_view_transformer, pre_process, img_bev_encoder_backbone,
         img_bev_encoder_neck) = with_derived_channels(
            img_backbone, img_neck, img_view_transformer, pre_process, img_bev_encoder_backbone,
            img_bev_encoder_neck, num_adj)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        self.img_view_transformer = MODELS.build(img_view_transformer)
        self.img_bev_encoder_backbone = MODELS.build(img_bev_encoder_backbone)
        self.img_bev_encoder_neck = MODELS.build(img_bev_encoder_neck)
        self.pre_process_net = MODELS.build(pre_process) if pre_process is not None else None
        self.num_adj = num_adj
        self.num_frames = num_adj + 2  # key + adjacent frames + one stereo reference frame

    def image_encoder(self, imgs: Tensor) -> tuple[Tensor, Tensor]:
        """Backbone + neck on one frame.

        Args:
            imgs: (B, N, 3, H, W) normalised images.

        Returns:
            ``(stereo_feat, neck_feat)``: (B*N, C0, H/4, W/4) stage-0 feature and
            (B, N, C, H/16, W/16) neck feature.
        """
        batch, cams = imgs.shape[:2]
        stereo_feat, *feats = self.img_backbone(imgs.flatten(0, 1))  # (B, N, ...) -> (B*N, ...)
        neck_feat = self.img_neck(feats)  # (B*N, C, h, w)
        return stereo_feat, neck_feat.view(batch, cams, *neck_feat.shape[1:])

    def bev_encoder(self, voxel_feat: Tensor) -> Tensor:
        """3-D encoder: (B, C_in, Z, Y, X) -> (B, C_out, Z, Y, X)."""
        return self.img_bev_encoder_neck(self.img_bev_encoder_backbone(voxel_feat))

    def extract_feat(self, cameras: CameraInputs) -> tuple[Tensor, Tensor]:
        """Encode all frames into key-frame voxel features (spec 2.4).

        Args:
            cameras: batched camera inputs with their bda (``docs/data_flow.md`` section 3).

        Returns:
            ``(voxel_feats, depth)``: (B, C, Z, Y, X) encoded voxel features and the key frame's
            depth distribution (B*N, D, h, w).
        """
        inputs = prepare_temporal_inputs(cameras, self.num_frames, stereo=True)
        view_transformer = self.img_view_transformer
        with torch.no_grad():  # the extra reference frame only provides its stereo feature
            stereo_prev = self.img_backbone.forward_stereo_feat(inputs.imgs[-1].flatten(0, 1))
        frame_feats: list[Tensor] = []
        key_depth = None
        for fid in range(self.num_frames - 2, -1, -1):  # oldest adjacent frame first, key last
            key_frame = fid == 0
            with nullcontext() if key_frame else torch.no_grad():
                stereo_curr, neck_feat = self.image_encoder(inputs.imgs[fid])
                mlp_input = view_transformer.get_mlp_input(
                    inputs.sensor2keyegos[0], inputs.intrins[fid], inputs.post_rots[fid],
                    inputs.post_trans[fid], inputs.bda)
                frame_feat, depth = view_transformer(
                    neck_feat, inputs.sensor2keyegos[fid], inputs.intrins[fid],
                    inputs.post_rots[fid], inputs.post_trans[fid], inputs.bda, mlp_input,
                    stereo_curr=stereo_curr, stereo_prev=stereo_prev,
                    k2s_sensor=inputs.curr2adjsensors[fid])
                if self.pre_process_net is not None:
                    frame_feat = self.pre_process_net(frame_feat)[0]
            frame_feats.append(frame_feat)
            stereo_prev = stereo_curr
            if key_frame:
                key_depth = depth
        # F x (B, C, Z, Y, X), oldest first -> (B, F*C, Z, Y, X)
        voxel_feats = self.bev_encoder(torch.cat(frame_feats, dim=1))
        return voxel_feats, key_depth
