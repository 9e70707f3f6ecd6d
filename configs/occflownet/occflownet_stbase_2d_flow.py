# OccFlowNet with occupancy flow: all rays are kept and dynamic voxels are moved into each render
# frame with the ground-truth box motion (spec 1.3, 3.5).
_base_ = ['./occflownet_stbase_2d.py']

model = dict(renderer=dict(temporal_filter=False, ignore_classes=None, use_flow=True))

train_keys = _base_.train_keys + ['gt_flow']
train_pipeline = [
    _base_.prepare_images,
    _base_.load_points,
    _base_.point_depth,
    dict(_base_.generate_rays, ignore_classes=None),
    _base_.load_flow,
    _base_.bev_augmentation,  # flips the flow rows too
    dict(type='PackOccInputs', keys=train_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
