# The tiny OccFlowNet of tests/data/golden/tiny_model_README.md: the paper model
# (occflownet_stbase_2d_flow.py) at toy sizes (2 cameras, 64x192 input, 32x32x8 grid), same
# module types and options. tests/test_golden/test_golden_tiny_model.py loads the original's
# weights into it and reproduces the original's forward pass.
_base_ = ['../../_base_/models/occflownet_tiny.py', '../../_base_/geometry/occ3d.py']

# The original's tiny geometry: the paper's (inherited) with a 32x32x8 grid (2.5 x 2.5 x 0.8 m)
# over the Occ3D range, which is also its label grid, and 4 m depth bins.
geometry = dict(label_grid=dict(shape=[32, 32, 8]), model_grid_shape=[32, 32, 8],
                depth_bins=[1.0, 45.0, 4.0])
input_size = (64, 192)
num_trans = 8

model = dict(
    img_view_transformer=dict(
        input_size=input_size,
        out_channels=num_trans,
        depthnet_cfg=dict(aspp_mid_channels=8),
        bev_pool_impl='torch'),
    renderer=dict(use_flow=True))
