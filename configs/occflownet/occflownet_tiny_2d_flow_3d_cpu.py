# The tiny CPU member of occflownet_stbase_2d_flow_3d.py: the tiny flow config plus the 3-D
# voxel losses on the Occ3D labels (spec 1.3, 2.10). The model grid (100x100x16) is coarser than
# the labels' 200x200x16 (the geometry's model and label grids): the 3-D losses learn each 2x2x1
# block's majority label. The paper's free-space threshold 0.3 on the sigmoid density is
# 0.3 x `density_scale` 5 = 1.5 on the tiny config's sigma.
_base_ = ['./occflownet_tiny_2d_flow_cpu.py']

model = dict(
    eval_threshold_range=[0.3 * _base_.model.renderer.density_scale],
    # 10x the original's weight: at 0.8 m cells the render depth loss pulls the cells at an
    # object's edge towards free (more rays cross them than end in them); the over-fit on 4
    # samples: weight 1 41.26 mIoU (car 15.3), weight 10 49.74 (car 33.1)
    # (docs/training_diagnostics.md, "Where the objects are lost")
    loss_occ_density=dict(type='OccDensityBCELoss', loss_weight=10.0),
    loss_occ_semantics=dict(type='OccSemanticCELoss', loss_weight=1.0))

train_keys = _base_.train_keys + ['gt_occ']
train_pipeline = [
    _base_.train_pipeline[0],  # PrepareImageInputs
    _base_.load_occ_gt,
    *_base_.train_pipeline[1:-1],  # points, rays, flow, the BEV augmentation (of all the GT)
    dict(type='PackOccInputs', keys=train_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
