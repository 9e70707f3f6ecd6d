# A tiny CPU member of the OccFlowNet family for the synthetic demo world (data/demo, see
# docs/demo_world.md): occflownet_stbase_2d_flow.py at toy sizes, with the tiny model shared
# with the golden config (_base_/models/occflownet_tiny.py) and the pipelines composed from the
# dataset base's named steps. The README's quickstart
# (tools/quickstart.sh) trains it on 2 CPU cores and evaluates it on the Occ3D 200x200x16 grid
# next to the non-learned prior (tools/eval_prior.py).
#
# Differences from the paper config (everything else is inherited):
# - data: demo info pkls / flow, 800x450 source images, 6 cameras at 128x352, no rotation aug;
# - model: small Swin (as the golden tiny model), 16/32/64 channels, 2 m depth bins, a
#   100x100x16 model grid of 0.8x0.8x0.4 m (`geometry.model_grid_shape`: flow rows are divided
#   down to it and predictions nearest-upsampled to the label grid, Occ3D's 200x200x16), 4096
#   rays of 32 (+16 proposal) samples per iteration, pure-torch rendering, cell-aligned lookup
#   (align_corners=False: the demo ground lies at the centre of z layer 0, which the original's
#   corner-aligned lookup maps half a layer up, so the ground density leaks into layer 1);
# - the spec's geometric quirks fixed in `geometry` (spec 10.1 #1, #2, #3, #5, #8; the paper
#   configs keep them): depth GT along the ray (the renderer renders range, not camera z), no
#   +0.5 px ray shift, cell-aligned lookup, key ego frame at the LiDAR timestamp, no
#   scene-boundary copies as render frames;
# - sigma = 5 x the sigmoid density (`density_scale`; the original uses the sigmoid itself,
#   quirk 6): with sigma <= 1/m a ray needs ~3 m of occupied space to stop, so the ground
#   density also filled the free layer above it (measured on the demo val split: 54k false
#   driveable voxels in z layer 1 at scale 1, 14k at scale 5); the free-space threshold 0.35
#   applies to sigma (a voxel is free where its sigmoid density < 0.35 / 5);
# - a sparsity prior on the density (DensitySparsityLoss 0.1) and no augmentation (below);
# - render class weights from the demo world's own class frequencies (below);
# - an L1 render depth loss (weight 0.3) instead of the original's MSE (0.05): with the squared
#   error the 30-40 m rays, whose rendered depth errs by metres, outweigh the near ground and
#   walls; with L1 every ray pulls equally hard (docs/training_diagnostics.md);
# - the semantic logits at each rendered ray's LiDAR return trained on its label
#   (`loss_point_semantics`, weight 1.0) next to the rendered class: a grazing ground ray enters
#   the ground layer metres before its return, in the cells of the neighbouring class (a
#   sidewalk ray over the road), so the rendered class alone blurs the flat classes; with it the
#   quickstart learns sidewalk and terrain on every seed (docs/training_diagnostics.md);
# - schedule: batch 2, AdamW 2e-3, 20-iteration warm-up then cosine decay, 8 epochs (320
#   iterations), one checkpoint + validation at the end, EMA adapted to the short run.
# Measured: see the README's quickstart section.
_base_ = [
    '../_base_/models/occflownet_tiny.py',
    '../_base_/datasets/nus-occ3d.py',
    '../_base_/schedules/adamw-12e.py',
    '../_base_/default_runtime.py',
]

info_prefix = 'data/demo/bevdetv2-nuscenes-mini'  # -> <info_prefix>_infos_{train,val}.pkl
flow_root = 'data/demo/flow'

# Model grid 100x100x16: 0.8 m in x/y, Occ3D's 0.4 m in z (the ground is one 0.4 m layer; a
# 0.8 m layer would also fill the free layer above it), evaluated on the label grid, Occ3D's
# 200x200x16; 2 m depth bins; the quirk fixes: spec 10.1 #5 (lidar_key_ego), #1
# (depth_along_ray), #2 (half_pixel_shift), #3 (align_corners), #8 (skip_copied_frames).
geometry = dict(_base_.geometry, model_grid_shape=[100, 100, 16], depth_bins=[1.0, 45.0, 2.0],
                lidar_key_ego=True, depth_along_ray=True, half_pixel_shift=False,
                align_corners=False, skip_copied_frames=True)
input_size = (128, 352)
# Camera-visible Occ3D voxels per class (0-16) of the demo world's train split, the counts the
# render losses' class weights are computed from (as the original computed its weights from
# Occ3D-nuScenes'); `python tools/misc/class_frequencies.py --config <this config>` prints them.
# The nuScenes table weighs other_flat twice as much as sidewalk and terrain and vegetation a
# third of them; the demo world has the four in equal measure (weights 0.62-0.66 here).
class_frequencies = [0, 3696, 3065, 5802, 33974, 0, 0, 13549, 2082, 0, 6011, 175282, 79930,
                     81920, 69932, 140407, 70204]
num_trans = 16

data_config = dict(_base_.data_config, input_size=input_size, src_size=(450, 800), rot=(0.0, 0.0))

model = dict(
    img_backbone=dict(with_cp=False),
    img_view_transformer=dict(
        input_size=input_size, out_channels=num_trans, depthnet_cfg=dict(aspp_mid_channels=16)),
    renderer=dict(
        use_flow=True, samples_per_ray=32, prop_samples_per_ray=16, density_scale=5.0,
        render_impl='torch'),
    rays_batch_size=4096,
    ray_class_weights=dict(class_frequencies=class_frequencies),
    loss_render_depth=dict(loss_type='l1', loss_weight=0.3),
    loss_point_semantics=dict(type='RenderSemanticLoss', loss_weight=1.0),
    # an L1 prior towards free on the whole density field: space that no LiDAR ray crosses
    # (half of the scored voxels) is otherwise left at the untrained density, i.e. occupied
    # (measured: docs/training_diagnostics.md)
    loss_density_prior=dict(type='DensitySparsityLoss', loss_weight=0.1))

# The pipelines of the paper config with the demo data, without augmentation (is_train=False:
# the test-mode image geometry, no BEV flips). In a run of a few hundred iterations augmentation
# keeps the model from fitting even its training samples: the CI learning test's run (seed 0,
# deterministic) gave 5.39 with it (6.22 on its own train split) and 11.04 without
# (docs/training_diagnostics.md).
train_keys = _base_.train_keys + ['gt_flow']
train_pipeline = [
    dict(_base_.prepare_images, data_config=data_config, is_train=False),
    _base_.load_points,
    _base_.point_depth,
    dict(_base_.generate_rays, ignore_classes=None),
    dict(_base_.load_flow, data_root=flow_root),  # LoadFlowGT's fallback root
    dict(_base_.bev_augmentation, is_train=False),
    dict(type='PackOccInputs', keys=train_keys),
]
test_pipeline = [dict(_base_.prepare_images, data_config=data_config, is_train=False),
                 dict(_base_.bev_augmentation, is_train=False),
                 dict(type='PackOccInputs', keys=['img_inputs'])]

train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=False,
    dataset=dict(ann_file=f'{info_prefix}_infos_train.pkl', flow_root=flow_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, persistent_workers=False,
    dataset=dict(ann_file=f'{info_prefix}_infos_val.pkl', flow_root=flow_root,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

# Short schedule: 80 train samples / batch 2 = 40 iterations per epoch. The cosine decay spans
# the whole run: a run with another train_cfg.max_epochs also sets param_scheduler.1.T_max/end.
# 8 epochs beat 6 on each of seeds 0, 1, 2 (7.78 / 14.11 / 11.63 vs 7.07 / 11.79 / 11.35) and,
# since tools/train.py keeps freed host memory, cost about what 6 did before
# (docs/training_diagnostics.md).
max_epochs = 8
warmup_iters = 20
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, end_factor=1.0, by_epoch=False, begin=0,
         end=warmup_iters + 1),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=2e-5, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=5))
log_processor = dict(window_size=5)
# The paper's EMA (decay 0.999, ramp 2000, counter starting at 10560) averages over ~1000
# iterations: after a run of a few hundred it would still be mostly the random initial weights.
# Here the counter starts at 0 with a 20-update ramp and decay 0.95, i.e. an averaging window of
# ~20 iterations that follows the weights from the first updates and smooths the last epoch.
custom_hooks = [dict(type='MEGVIIEMAHook', decay=0.95, ramp=20.0, init_updates=0)]
load_from = None
