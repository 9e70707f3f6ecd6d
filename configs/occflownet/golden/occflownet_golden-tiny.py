# The tiny OccFlowNet of tests/data/golden/tiny_model_README.md: the paper model
# (occflownet_stbase_2d_flow.py) at toy sizes (2 cameras, 64x192 input, 32x32x8 grid), same
# module types and options. tests/test_golden/test_golden_tiny_model.py loads the original's
# weights into it and reproduces the original's forward pass.
_base_ = ['../../_base_/models/occflownet_tiny.py']

# The original's tiny geometry: a 32x32x8 grid (2.5 x 2.5 x 0.8 m) over the Occ3D range, which
# is also its label grid, 4 m depth bins, the paper's frames and conventions.
geometry = dict(
    label_grid=dict(lower=[-40.0, -40.0, -1.0], upper=[40.0, 40.0, 5.4], shape=[32, 32, 8]),
    model_grid_shape=[32, 32, 8],
    depth_bins=[1.0, 45.0, 4.0],
    adjacent_frames=[1, 2],
    render_frame_ids=[-3, -2, -1, 0, 1, 2, 3],
    lidar_key_ego=False,
    depth_along_ray=False,
    half_pixel_shift=True,
    align_corners=True,
    skip_copied_frames=False)
input_size = (64, 192)
num_trans = 8

model = dict(
    img_view_transformer=dict(
        input_size=input_size,
        out_channels=num_trans,
        depthnet_cfg=dict(aspp_mid_channels=8),
        bev_pool_impl='torch'),
    renderer=dict(use_flow=True))
