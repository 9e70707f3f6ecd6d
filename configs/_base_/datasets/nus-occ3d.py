# nuScenes + Occ3D-nuScenes for OccFlowNet (spec 1.2, 4): the scene geometry, the camera-only
# pipelines of the `_2d` variant, loaders and the Occ3D mIoU evaluator. The flow and 3-D variants
# extend `train_pipeline` and the packed keys.
_base_ = ['../geometry/occ3d.py']  # the scene geometry, `geometry`

dataset_type = 'NuScenesDatasetOccpancy'
# The info pkls hold paths relative to the working directory (run from the repository root).
info_prefix = 'data/bevdetv2-nuscenes'  # -> <info_prefix>_infos_{train,val}.pkl
flow_root = 'data/flow'

dynamic_classes = [0, 1, 3, 4, 5, 7, 9, 10]  # rays of t != 0 dropped by the `_2d` variant

data_config = dict(
    cams=['CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK',
          'CAM_BACK_RIGHT'],
    Ncams=6,
    input_size=(512, 1408),
    src_size=(900, 1600),
    resize=(-0.06, 0.11),
    rot=(-5.4, 5.4),
    flip=True,
    crop_h=(0.0, 0.0),
    resize_test=0.00)
bda_aug_conf = dict(rot_lim=(0.0, 0.0), scale_lim=(1.0, 1.0), flip_dx_ratio=0.5,
                    flip_dy_ratio=0.5)

# The steps of the pipelines, by name: variant configs compose their pipelines from these
# (extended with dict(step, key=value)), never by list position.
prepare_images = dict(type='PrepareImageInputs', data_config=data_config, is_train=True,
                      sequential=True)
bev_augmentation = dict(type='LoadAnnotationsBEVDepth', bda_aug_conf=bda_aug_conf, is_train=True)
load_points = dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5)
point_depth = dict(type='PointToMultiViewDepth', downsample=1)
generate_rays = dict(type='GenerateRays', depth_range=[0.05, 39.0], ignore_classes=dynamic_classes)
load_flow = dict(type='LoadFlowGT', data_root=flow_root)
load_occ_gt = dict(type='LoadOccGTFromFile')
# PackOccInputs: 'img_inputs' goes to the model's inputs, the gt_* keys to the data sample.
train_keys = ['img_inputs', 'gt_depth', 'gt_rays']
# The BEV augmentation comes after every step that loads ground truth: it applies to all of it.
train_pipeline = [
    prepare_images,
    load_points,
    point_depth,
    generate_rays,
    bev_augmentation,
    dict(type='PackOccInputs', keys=train_keys),
]
test_pipeline = [
    dict(prepare_images, is_train=False),
    dict(bev_augmentation, is_train=False),
    dict(type='PackOccInputs', keys=['img_inputs']),
]

train_dataloader = dict(
    batch_size=4,  # per GPU; 4 GPUs give the paper's global batch of 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{info_prefix}_infos_train.pkl',
        flow_root=flow_root,
        pipeline=train_pipeline,
        test_mode=False))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{info_prefix}_infos_val.pkl',
        flow_root=flow_root,
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='OccMetric', use_image_mask=True)
test_evaluator = val_evaluator
