# OccFlowNet model of the paper configs (spec 1.2): Swin-B + FPN_LSS, stereo LSS view
# transformer, 3-D encoder, decoders, the volume renderer and the render losses. Channel counts
# that follow from num_trans, out_dim and the backbone are derived by the detector
# (mmdet3d/models/detectors/channel_plan.py), as the original computed them from numC_Trans:
# neck 512+1024 in, view transformer 512 in, 3-D encoder 64 in and 32/64/128, its neck 224 in and
# 32 out, decoders 64 in. The scene geometry (grids, depth bins, frames, conventions) is the
# config's top-level `geometry` (from the dataset base), which load_config hands to the model:
# the frames fused (num_adj = len(adjacent_frames) - 1) and the view transformer's and the
# renderer's grids follow from it. The configs fill in the view transformer's input_size; the
# variants set the renderer's dynamic-object handling (static filter or flow) and the optional
# 3-D losses.
num_trans = 32  # numC_Trans: channels lifted into the voxels
out_dim = 64  # voxel_feat_dim: channels of final_conv, input of the decoders
hidden_dim = 256

model = dict(
    type='OccFlowNet',
    out_dim=out_dim,
    eval_threshold_range=[0.35],
    data_preprocessor=dict(type='OccDataPreprocessor'),
    img_backbone=dict(
        type='SwinTransformer',
        patch_size=4,
        window_size=12,
        mlp_ratio=4,
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        strides=[4, 2, 2, 2],
        out_indices=[2, 3],
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        with_cp=True,
        return_stereo_feat=True,
        output_missing_index_as_none=False),
    img_neck=dict(
        type='FPN_LSS',
        out_channels=512,
        extra_upsample=None,
        input_feature_index=[0, 1],
        scale_factor=2),
    img_view_transformer=dict(
        type='LSSViewTransformerBEVStereo',
        out_channels=num_trans,
        sid=False,
        collapse_z=False,
        loss_depth_weight=0.05,
        depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=96, stereo=True, bias=5.0),
        downsample=16,
        bev_pool_impl='auto'),
    pre_process=dict(
        type='CustomResNet3D',
        num_layer=[1],
        stride=[1],
        backbone_output_ids=[0]),
    img_bev_encoder_backbone=dict(
        type='CustomResNet3D',
        num_layer=[1, 2, 4],
        stride=[1, 2, 2],
        backbone_output_ids=[0, 1, 2]),
    img_bev_encoder_neck=dict(type='LSSFPN3D'),
    density_decoder=dict(
        type='PointDecoder', embed_dims=hidden_dim, num_hidden_layers=3, num_classes=1,
        final_act_cfg=dict(type='Sigmoid')),
    semantic_decoder=dict(
        type='PointDecoder', embed_dims=hidden_dim, num_hidden_layers=3, num_classes=17,
        final_act_cfg=None),
    renderer=dict(
        type='VolumeRenderer',
        render_range=[0.05, 40.0],
        samples_per_ray=100,
        prop_samples_per_ray=50,
        use_proposal=True,
        render_impl='auto'),
    # the render losses, on the rays_batch_size rays drawn per iteration from all rays of the
    # batch, each ray weighted by the class-balanced log weight of its label
    rays_batch_size=32768,
    ray_class_weights=dict(type='ClassBalancedLogWeights'),
    loss_render_depth=dict(type='RenderDepthLoss', loss_weight=0.05, loss_type='mse'),
    loss_render_semantics=dict(type='RenderSemanticLoss', loss_weight=1.0))
