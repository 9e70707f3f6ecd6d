"""nuScenes -> BEVDet/OccFlowNet info dicts (spec 5.1) with nuscenes-devkit.

One info per keyframe sample. Paths are ``os.path.join(root_path, <table filename>)``, so they
are relative to the working directory when ``root_path`` is (the original's convention, e.g.
``./data/nuscenes/samples/LIDAR_TOP/...``). ``ann_infos`` (CAM_FRONT-ego detection boxes) are
not written: nothing on the OccFlowNet path reads them (spec 13).
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.structures.pose import pose_matrix

logger = logging.getLogger(__name__)

VERSIONS = ('v1.0-trainval', 'v1.0-mini')  # v1.0-test has no panoptic labels
CAMERA_TYPES = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
                'CAM_BACK_RIGHT')
NUSCENES_TABLES = ('attribute', 'calibrated_sensor', 'category', 'ego_pose', 'instance', 'log',
                   'map', 'sample', 'sample_annotation', 'sample_data', 'scene', 'sensor',
                   'visibility', 'panoptic')
# nuScenes general category -> detection name (mmdet3d NuScenesDataset.NameMapping).
NAME_MAPPING = {
    'movable_object.barrier': 'barrier',
    'vehicle.bicycle': 'bicycle',
    'vehicle.bus.bendy': 'bus',
    'vehicle.bus.rigid': 'bus',
    'vehicle.car': 'car',
    'vehicle.construction': 'construction_vehicle',
    'vehicle.motorcycle': 'motorcycle',
    'human.pedestrian.adult': 'pedestrian',
    'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian',
    'human.pedestrian.police_officer': 'pedestrian',
    'movable_object.trafficcone': 'traffic_cone',
    'vehicle.trailer': 'trailer',
    'vehicle.truck': 'truck',
}

Progress = Callable[[Iterable], Iterable]


def info_prefix(extra_tag: str, version: str) -> str:
    """File prefix of the info pkls: ``extra_tag`` plus ``-mini`` for v1.0-mini (spec 5.1)."""
    return extra_tag + '-mini' if version == 'v1.0-mini' else extra_tag


def info_path(out_dir: str, extra_tag: str, version: str, split: str) -> str:
    """``<out_dir>/<prefix>_infos_<split>.pkl``."""
    return os.path.join(out_dir, f'{info_prefix(extra_tag, version)}_infos_{split}.pkl')


def default_occ_root(root_path: str) -> str:
    """Occ3D ``gts`` folder used when none is given.

    ``<root_path>/gts`` if that folder exists (a self-contained dataroot such as the demo set),
    else the sibling ``<root_path>/../gts`` of the original layout (``./data/nuscenes`` ->
    ``./data/gts``).
    """
    inside = posixpath.join(root_path, 'gts')
    if os.path.isdir(inside):
        return inside
    return posixpath.join(posixpath.dirname(root_path.rstrip('/')) or '.', 'gts')


def check_dataroot(root_path: str, version: str) -> None:
    """Fail early, naming the path, when a table or label folder the converter needs is missing.

    Raises:
        ValueError: unknown ``version``.
        FileNotFoundError: missing version folder, table json or ``panoptic/<version>`` folder.
    """
    if version not in VERSIONS:
        raise ValueError(f'unknown nuScenes version {version!r}; expected one of {VERSIONS}')
    table_dir = os.path.join(root_path, version)
    if not os.path.isdir(table_dir):
        raise FileNotFoundError(f'nuScenes table folder not found: {table_dir}')
    for table in NUSCENES_TABLES:
        path = os.path.join(table_dir, table + '.json')
        if not os.path.isfile(path):
            hint = ' (install nuScenes-panoptic into the same dataroot)' * (table == 'panoptic')
            raise FileNotFoundError(f'nuScenes table not found: {path}{hint}')
    panoptic_dir = os.path.join(root_path, 'panoptic', version)
    if not os.path.isdir(panoptic_dir):
        raise FileNotFoundError(f'nuScenes-panoptic label folder not found: {panoptic_dir}')


def load_nuscenes(root_path: str, version: str) -> Any:
    """Check the dataroot, then load it with ``nuscenes.nuscenes.NuScenes``.

    Raises:
        ValueError: a table is not valid JSON (named), or the devkit rejects the dataroot.
    """
    check_dataroot(root_path, version)
    from nuscenes.nuscenes import NuScenes
    try:
        return NuScenes(version=version, dataroot=root_path, verbose=False)
    except json.JSONDecodeError as err:
        for table in NUSCENES_TABLES:
            path = os.path.join(root_path, version, table + '.json')
            try:
                with open(path) as f:
                    json.load(f)
            except json.JSONDecodeError as table_err:
                raise ValueError(f'nuScenes table {path} is not valid JSON: {table_err}') from err
        raise
    except (AssertionError, KeyError, IndexError) as err:
        raise ValueError(f'nuscenes-devkit cannot load {os.path.join(root_path, version)}: '
                         f'{type(err).__name__}: {err}') from err


def split_scene_names(version: str) -> dict[str, list[str]]:
    """Official scene names per output split (nuscenes.utils.splits)."""
    from nuscenes.utils import splits
    if version == 'v1.0-mini':
        return dict(train=list(splits.mini_train), val=list(splits.mini_val))
    return dict(train=list(splits.train), val=list(splits.val))


def _camera_info(nusc: Any, root_path: str, sd_token: str, global_from_lidar: np.ndarray,
                 cam: str) -> dict[str, Any]:
    """One ``cams`` entry; the ego pose is the one at the camera timestamp."""
    sd = nusc.get('sample_data', sd_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    global_from_cam = pose_matrix(pose['translation'], pose['rotation']) @ pose_matrix(
        cs['translation'], cs['rotation'])
    lidar_from_cam = np.linalg.inv(global_from_lidar) @ global_from_cam
    return dict(
        data_path=posixpath.join(root_path, sd['filename']),
        type=cam,
        sample_data_token=sd_token,
        sensor2ego_translation=cs['translation'],
        sensor2ego_rotation=cs['rotation'],
        ego2global_translation=pose['translation'],
        ego2global_rotation=pose['rotation'],
        timestamp=sd['timestamp'],
        sensor2lidar_rotation=lidar_from_cam[:3, :3],
        sensor2lidar_translation=lidar_from_cam[:3, 3],
        cam_intrinsic=np.asarray(cs['camera_intrinsic'], dtype=np.float64),
    )


def _annotations(nusc: Any, sample: dict, lidar_token: str,
                 lidar_from_global_rot: np.ndarray) -> dict[str, Any]:
    """Boxes of a sample in the LiDAR frame: (N, 10) = x, y, z, w, l, h, qw, qx, qy, qz."""
    _, boxes, _ = nusc.get_sample_data(lidar_token)
    anns = [nusc.get('sample_annotation', token) for token in sample['anns']]
    gt_boxes = np.array(
        [[*box.center, *box.wlh, *box.orientation.elements] for box in boxes],
        dtype=np.float64).reshape(-1, 10)
    velocity = np.array([nusc.box_velocity(token)[:2] for token in sample['anns']],
                        dtype=np.float64).reshape(-1, 2)
    velocity3 = np.concatenate([velocity, np.zeros((len(velocity), 1))], axis=1)
    gt_velocity = (velocity3 @ lidar_from_global_rot.T)[:, :2]
    names = [NAME_MAPPING.get(box.name, box.name) for box in boxes]
    num_lidar = np.array([ann['num_lidar_pts'] for ann in anns], dtype=np.int64)
    num_radar = np.array([ann['num_radar_pts'] for ann in anns], dtype=np.int64)
    return dict(
        gt_boxes=gt_boxes,
        gt_names=np.array(names, dtype='<U32').reshape(-1),
        gt_instance_tokens=[ann['instance_token'] for ann in anns],
        gt_velocity=gt_velocity,
        num_lidar_pts=num_lidar,
        num_radar_pts=num_radar,
        valid_flag=(num_lidar + num_radar) > 0,
    )


def sample_info(nusc: Any, sample: dict, occ_root: str) -> dict[str, Any]:
    """The info dict of one keyframe sample (spec 5.1 keys, ``scene_token`` and ``occ_path``).

    Raises:
        FileNotFoundError: the sample's LiDAR or panoptic file is missing.
        KeyError: the sample has no panoptic record.
    """
    root_path = nusc.dataroot
    lidar_token = sample['data']['LIDAR_TOP']
    sd = nusc.get('sample_data', lidar_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    scene = nusc.get('scene', sample['scene_token'])
    lidar_path = posixpath.join(root_path, sd['filename'])
    if not os.path.isfile(lidar_path):
        raise FileNotFoundError(f'LiDAR file of sample {sample["token"]} not found: {lidar_path}')
    try:
        panoptic = nusc.get('panoptic', lidar_token)
    except KeyError as err:
        raise KeyError(f'no panoptic record for LIDAR_TOP sample_data {lidar_token} '
                       f'(sample {sample["token"]}) in {root_path}/{nusc.version}') from err
    panoptic_path = posixpath.join(root_path, panoptic['filename'])
    if not os.path.isfile(panoptic_path):
        raise FileNotFoundError(
            f'panoptic labels of sample {sample["token"]} not found: {panoptic_path}')
    global_from_lidar = pose_matrix(pose['translation'], pose['rotation']) @ pose_matrix(
        cs['translation'], cs['rotation'])
    info = dict(
        lidar_path=lidar_path,
        token=sample['token'],
        sweeps=[],
        cams={cam: _camera_info(nusc, root_path, sample['data'][cam], global_from_lidar, cam)
              for cam in CAMERA_TYPES},
        lidar2ego_translation=cs['translation'],
        lidar2ego_rotation=cs['rotation'],
        ego2global_translation=pose['translation'],
        ego2global_rotation=pose['rotation'],
        timestamp=sample['timestamp'],
        scene_name=scene['name'],
        scene_token=sample['scene_token'],
        panoptic_path=panoptic_path,
        lidar_idx=lidar_token,
        occ_path=posixpath.join(occ_root, scene['name'], sample['token']),
    )
    info.update(_annotations(nusc, sample, lidar_token, global_from_lidar[:3, :3].T))
    return info


def available_scene_tokens(nusc: Any) -> set[str]:
    """Scenes whose first LiDAR keyframe file exists (others are skipped with a warning)."""
    tokens = set()
    for scene in nusc.scene:
        sample = nusc.get('sample', scene['first_sample_token'])
        sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        if os.path.isfile(os.path.join(nusc.dataroot, sd['filename'])):
            tokens.add(scene['token'])
        else:
            logger.warning('skipping %s: first LiDAR file %s is missing', scene['name'],
                           sd['filename'])
    return tokens


def create_infos(nusc: Any, version: str, occ_root: str, progress: Progress = iter
                 ) -> dict[str, list[dict[str, Any]]]:
    """Info dicts of all samples of the available scenes, per split, in ``nusc.sample`` order.

    Scenes not in the train list go to ``val`` (the original's rule).
    """
    split_names = split_scene_names(version)
    available = available_scene_tokens(nusc)
    name_of = {scene['token']: scene['name'] for scene in nusc.scene}
    train_names = set(split_names['train'])
    split_of = {token: 'train' if name_of[token] in train_names else 'val' for token in available}
    official = train_names | set(split_names['val'])
    for token in sorted(available, key=name_of.get):
        if name_of[token] not in official:
            logger.warning('%s is in no official %s split; it goes to val', name_of[token],
                           version)
    result: dict[str, list[dict[str, Any]]] = {split: [] for split in split_names}
    for sample in progress(nusc.sample):
        split = split_of.get(sample['scene_token'])
        if split is not None:
            result[split].append(sample_info(nusc, sample, occ_root))
    return result


def write_infos(infos: dict[str, list[dict[str, Any]]], out_dir: str, extra_tag: str,
                version: str) -> list[str]:
    """Atomically write one pkl per split; returns the written paths."""
    paths = []
    for split, split_infos in infos.items():
        path = info_path(out_dir, extra_tag, version, split)
        dump_infos(path, split_infos, version)
        paths.append(path)
    return paths
