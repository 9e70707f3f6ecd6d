# The tiny OccFlowNet of ../shared/reference/golden/tiny_model_README.md: same module types and
# options as occflownet_stbase_2d_flow.py at toy sizes (2 cameras, 64x192 input, 32x32x8 grid).
# Used by tests/test_golden/test_golden_tiny_model.py to reproduce the original's forward pass.
grid_config = dict(x=[-40, 40, 2.5], y=[-40, 40, 2.5], z=[-1, 5.4, 0.8], depth=[1.0, 45.0, 4.0])
input_size = (64, 192)
num_trans = 8
out_dim = 16

model = dict(
    type='OccFlowNet',
    num_adj=1,
    out_dim=out_dim,
    eval_threshold_range=[0.35],
    data_preprocessor=dict(type='OccDataPreprocessor'),
    img_backbone=dict(
        type='SwinTransformer',
        patch_size=4,
        window_size=4,
        mlp_ratio=4,
        embed_dims=32,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8],
        strides=[4, 2, 2, 2],
        out_indices=[2, 3],
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        return_stereo_feat=True,
        output_missing_index_as_none=False),
    img_neck=dict(
        type='FPN_LSS',
        in_channels=128 + 256,
        out_channels=64,
        extra_upsample=None,
        input_feature_index=[0, 1],
        scale_factor=2),
    img_view_transformer=dict(
        type='LSSViewTransformerBEVStereo',
        grid_config=grid_config,
        input_size=input_size,
        in_channels=64,
        out_channels=num_trans,
        sid=False,
        collapse_z=False,
        loss_depth_weight=0.05,
        depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=8, stereo=True, bias=5.0),
        downsample=16,
        bev_pool_impl='torch'),
    pre_process=dict(
        type='CustomResNet3D',
        numC_input=num_trans,
        num_layer=[1],
        num_channels=[num_trans],
        stride=[1],
        backbone_output_ids=[0]),
    img_bev_encoder_backbone=dict(
        type='CustomResNet3D',
        numC_input=num_trans * 2,
        num_layer=[1, 2, 4],
        num_channels=[num_trans, num_trans * 2, num_trans * 4],
        stride=[1, 2, 2],
        backbone_output_ids=[0, 1, 2]),
    img_bev_encoder_neck=dict(type='LSSFPN3D', in_channels=num_trans * 7, out_channels=num_trans),
    density_decoder=dict(
        type='PointDecoder', in_channels=out_dim, embed_dims=32, num_hidden_layers=3,
        num_classes=1, final_act_cfg=dict(type='Sigmoid')),
    semantic_decoder=dict(
        type='PointDecoder', in_channels=out_dim, embed_dims=32, num_hidden_layers=3,
        num_classes=17, final_act_cfg=None),
    renderer=dict(
        type='VolumeRenderer',
        pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4],
        grid_size=[32, 32, 8],
        samples_per_ray=100,
        prop_samples_per_ray=50,
        use_proposal=True,
        render_frame_ids=[-3, -2, -1, 0, 1, 2, 3],
        class_balanced_loss=True,
        log_weighting=True,
        use_flow=True,
        depth_loss_weight=0.05,
        semantic_loss_weight=1.0))
