# OccFlowNet, 2-D rendering supervision only: rays of the neighbouring frames that hit dynamic
# classes are dropped and those frames see a static density (spec 1.3, 3.7). The primitive of
# the paper configs: 4 GPUs x 4 samples, AdamW 1e-4, 12 epochs, EMA, BEVDet initialisation.
_base_ = [
    '../_base_/models/occflownet_stbase.py',
    '../_base_/datasets/nus-occ3d.py',
    '../_base_/schedules/adamw-12e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    img_view_transformer=dict(input_size=_base_.data_config['input_size']),
    renderer=dict(temporal_filter=True, ignore_classes=_base_.dynamic_classes))

default_hooks = dict(checkpoint=dict(interval=4))
train_cfg = dict(val_interval=4)
load_from = 'ckpts/bevdet-stbase-4d-stereo-512x1408-cbgs.pth'
