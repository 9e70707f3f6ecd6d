# The tiny OccFlowNet shared by the golden model (occflownet/golden/) and the CPU config
# (occflownet/occflownet_tiny_2d_flow_cpu.py): the paper model (occflownet_stbase.py) with a
# 4-stage Swin of 32 channels, a 64-channel image neck, 16 final and 32 hidden decoder
# channels. The configs choose the voxel channels (num_trans), the grid and the input size; the
# other channel counts are derived (mmdet3d/models/detectors/channel_plan.py).
_base_ = ['./occflownet_stbase.py']

out_dim = 16
hidden_dim = 32

model = dict(
    out_dim=out_dim,
    img_backbone=dict(embed_dims=32, window_size=4, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
    img_neck=dict(out_channels=64),
    density_decoder=dict(embed_dims=hidden_dim),
    semantic_decoder=dict(embed_dims=hidden_dim))
