# The tiny CPU member of occflownet_stbase_2d.py: the tiny flow config without flow. The rays of
# the other frames that hit a dynamic class are dropped (`GenerateRays(ignore_classes=...)`) and
# the renderer's temporal filter drops the other frames' samples in dynamic voxels (spec 1.3).
_base_ = ['./occflownet_tiny_2d_flow_cpu.py']

model = dict(renderer=dict(use_flow=False, temporal_filter=True,
                           ignore_classes=_base_.dynamic_classes))

train_pipeline = [
    *[dict(step, ignore_classes=_base_.dynamic_classes) if step['type'] == 'GenerateRays'
      else step for step in _base_.train_pipeline
      if step['type'] not in ('LoadFlowGT', 'PackOccInputs')],
    dict(type='PackOccInputs', keys=_base_.train_keys[:-1]),  # without gt_flow
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
