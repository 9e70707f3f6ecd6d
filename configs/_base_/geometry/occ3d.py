# The paper's scene geometry (mmdet3d/structures/occ_geometry.py), declared once and inherited
# by the dataset base (so by every paper config) and by the golden config, which override only
# what differs; load_config hands it to the model (view transformer, renderer) and the
# datasets (their pipeline steps). The Occ3D grid of 0.4 m voxels, 0.5 m depth bins, t-1 fused
# and t-2 as the stereo reference, the rays of keyframes -3..3, and the original's conventions
# (quirks 5, 1, 2, 3, 8 of spec 10.1 kept).
geometry = dict(
    label_grid=dict(lower=[-40.0, -40.0, -1.0], upper=[40.0, 40.0, 5.4], shape=[200, 200, 16]),
    model_grid_shape=[200, 200, 16],
    depth_bins=[1.0, 45.0, 0.5],
    adjacent_frames=[1, 2],
    render_frame_ids=[-3, -2, -1, 0, 1, 2, 3],
    lidar_key_ego=False,
    depth_along_ray=False,
    half_pixel_shift=True,
    align_corners=True,
    skip_copied_frames=False)
