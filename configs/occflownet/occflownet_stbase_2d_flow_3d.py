# OccFlowNet with occupancy flow and additional 3-D voxel supervision from Occ3D (spec 1.3,
# 2.10): BCE on the density over all voxels and CE on the occupied voxels; free below 0.3.
_base_ = ['./occflownet_stbase_2d_flow.py']

model = dict(
    eval_threshold_range=[0.3],
    loss_occ_density=dict(type='OccDensityBCELoss', loss_weight=1.0),
    loss_occ_semantics=dict(type='OccSemanticCELoss', loss_weight=1.0))

train_keys = _base_.train_keys + ['gt_occ']
train_pipeline = [
    _base_.prepare_images,
    _base_.load_occ_gt,
    _base_.load_points,
    _base_.point_depth,
    dict(_base_.generate_rays, ignore_classes=None),
    _base_.load_flow,
    _base_.bev_augmentation,  # flips the Occ3D GT and the flow rows, augments the rays
    dict(type='PackOccInputs', keys=train_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
