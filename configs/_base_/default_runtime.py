# Runtime shared by all configs (spec 1.1): registries, default hooks, logging, environment.
# Checkpoint and validation intervals are per schedule/variant: override
# default_hooks.checkpoint.interval and train_cfg.val_interval there (the original: 4 and 4).
default_scope = 'mmdet3d'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),  # iteration logs with ETA
    param_scheduler=dict(type='ParamSchedulerHook'),
    # epoch_N.pth every `interval` epochs (+ the last), `last_checkpoint` points at the newest
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
# scalars go to <work_dir>/<timestamp>/vis_data/scalars.json; add
# dict(type='TensorboardVisBackend') to vis_backends for TensorBoard (needs `tensorboard`)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

randomness = dict(seed=0, deterministic=False)  # the original trains with --seed 0
load_from = None
resume = False
