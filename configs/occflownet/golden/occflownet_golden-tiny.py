# The tiny OccFlowNet of tests/data/golden/tiny_model_README.md: the paper model
# (occflownet_stbase_2d_flow.py) at toy sizes (2 cameras, 64x192 input, 32x32x8 grid), same
# module types and options. tests/test_golden/test_golden_tiny_model.py loads the original's
# weights into it and reproduces the original's forward pass.
_base_ = ['../../_base_/models/occflownet_tiny.py']

grid_config = dict(x=[-40, 40, 2.5], y=[-40, 40, 2.5], z=[-1, 5.4, 0.8], depth=[1.0, 45.0, 4.0])
input_size = (64, 192)
num_trans = 8

model = dict(
    img_view_transformer=dict(
        grid_config=grid_config,
        input_size=input_size,
        out_channels=num_trans,
        depthnet_cfg=dict(aspp_mid_channels=8),
        bev_pool_impl='torch'),
    renderer=dict(
        pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4],
        grid_size=[32, 32, 8],
        render_frame_ids=[-3, -2, -1, 0, 1, 2, 3],
        use_flow=True))
