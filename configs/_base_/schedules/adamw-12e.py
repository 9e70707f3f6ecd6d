# The original's optimisation recipe (spec 1.2, 1.4, 7.1): AdamW lr 1e-4, weight decay 1e-2
# on all parameters, L2 grad-norm clip 5; linear warm-up over 200 iterations from 0.001 * lr,
# then a x0.1 step at epoch 100 (never reached: the lr is constant); 12 epochs; MEGVII EMA.
# The learning rate assumes a global batch of 16 (4 GPUs x 4 samples).
max_epochs = 12
base_lr = 1e-4
warmup_iters = 200

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-2),
    clip_grad=dict(max_norm=5, norm_type=2),
)

# mmengine's LinearLR reaches end_factor at step end - 1, so end = warmup_iters + 1 gives the
# original's lr(i) = base_lr * (0.001 + 0.999 * i / 200) for i < 200 and base_lr from i = 200.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, end_factor=1.0, by_epoch=False, begin=0,
         end=warmup_iters + 1),
    dict(type='MultiStepLR', milestones=[100], gamma=0.1, by_epoch=True, begin=0),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

auto_scale_lr = dict(enable=False, base_batch_size=16)

# EMA of all floating state-dict entries; epoch_N_ema.pth every epoch is what test.py
# evaluates. Validation during training uses the live weights, as in the original.
custom_hooks = [
    dict(type='MEGVIIEMAHook', decay=0.999, ramp=2000.0, init_updates=10560),
]
