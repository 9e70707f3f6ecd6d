# The tiny CPU member of occflownet_stbase_2d_flow_3d.py: the tiny flow config plus the 3-D
# voxel losses on the Occ3D labels (spec 1.3, 2.10). The model grid (100x100x16) is coarser than
# the labels' 200x200x16 (the geometry's model and label grids): the 3-D losses learn each 2x2x1
# block's majority label. The paper's free-space threshold 0.3 on the sigmoid density is
# 0.3 x `density_scale` 5 = 1.5 on the tiny config's sigma.
_base_ = ['./occflownet_tiny_2d_flow_cpu.py']

model = dict(
    eval_threshold_range=[0.3 * _base_.model.renderer.density_scale],
    loss_occ_density=dict(type='OccDensityBCELoss', loss_weight=1.0),
    loss_occ_semantics=dict(type='OccSemanticCELoss', loss_weight=1.0))

train_keys = _base_.train_keys + ['gt_occ']
train_pipeline = [
    _base_.train_pipeline[0],  # PrepareImageInputs
    _base_.load_occ_gt,
    *_base_.train_pipeline[1:-1],  # points, rays, flow, the BEV augmentation (of all the GT)
    dict(type='PackOccInputs', keys=train_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
