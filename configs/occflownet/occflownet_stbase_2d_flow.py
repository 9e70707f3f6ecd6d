# OccFlowNet with occupancy flow: all rays are kept and dynamic voxels are moved into each render
# frame with the ground-truth box motion (spec 1.3, 3.5).
_base_ = ['./occflownet_stbase_2d.py']

model = dict(renderer=dict(temporal_filter=False, ignore_classes=None, use_flow=True))

train_keys = _base_.train_keys + ['voxel_flow']
train_pipeline = _base_.train_pipeline[:4] + [
    dict(_base_.generate_rays, ignore_classes=None),
    dict(type='LoadFlowGT', data_root=_base_.flow_root, render_frame_ids=_base_.render_frame_ids),
    dict(type='PackOccInputs', keys=train_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
