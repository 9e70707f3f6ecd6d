# OccFlowNet with occupancy flow and additional 3-D voxel supervision from Occ3D (spec 1.3,
# 2.10): BCE on the density over all voxels and CE on the occupied voxels; free below 0.3.
_base_ = ['./occflownet_stbase_2d_flow.py']

model = dict(
    eval_threshold_range=[0.3],
    loss_occ_density=dict(type='OccDensityBCELoss', loss_weight=1.0),
    loss_occ_semantics=dict(type='OccSemanticCELoss', loss_weight=1.0))

train_keys = _base_.train_keys + ['voxel_semantics', 'mask_lidar', 'mask_camera']
train_pipeline = _base_.train_pipeline[:1] + [dict(type='LoadOccGTFromFile')] + \
    _base_.train_pipeline[1:-1] + [dict(type='PackOccInputs', keys=train_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
