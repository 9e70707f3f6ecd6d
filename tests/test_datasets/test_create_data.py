"""create_demo_data -> create_data_bevdet -> create_flow_data through the CLI on a tiny world.

The infos are checked against the raw v1.0 json tables (not through the devkit), the flow files
against the dense oracle (mmdet3d.testing.flow_oracle), and the dataset against both.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nuscenes.utils.splits import mini_train, mini_val
from pyquaternion import Quaternion

from mmdet3d.datasets.converters import flow_gt, nuscenes_infos
from mmdet3d.datasets.nuscenes_occ_dataset import NuScenesDatasetOccpancy
from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.testing.flow_oracle import reference_flow
from mmdet3d.testing.geometry import occ3d_geometry

REPO_ROOT = Path(__file__).resolve().parents[2]
WORLD_ARGS = ('--scenes', '2', '--samples-per-scene', '3', '--sweeps-per-sample', '0',
              '--image-size', '64x36', '--seed', '3', '--no-progress')
INFO_KEYS = {'lidar_path', 'token', 'sweeps', 'cams', 'lidar2ego_translation',
             'lidar2ego_rotation', 'ego2global_translation', 'ego2global_rotation', 'timestamp',
             'scene_name', 'scene_token', 'panoptic_path', 'lidar_idx', 'gt_boxes',
             'gt_instance_tokens', 'gt_names', 'gt_velocity', 'num_lidar_pts', 'num_radar_pts',
             'valid_flag', 'occ_path'}
CAM_KEYS = {'data_path', 'type', 'sample_data_token', 'sensor2ego_translation',
            'sensor2ego_rotation', 'ego2global_translation', 'ego2global_rotation', 'timestamp',
            'sensor2lidar_rotation', 'sensor2lidar_translation', 'cam_intrinsic'}
CAMERAS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
           'CAM_BACK_RIGHT']
SOME_NAMES = {'vehicle.car': 'car', 'human.pedestrian.adult': 'pedestrian',
              'movable_object.barrier': 'barrier', 'vehicle.bicycle': 'bicycle',
              'movable_object.trafficcone': 'traffic_cone', 'vehicle.truck': 'truck'}

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f'{script} failed:\n{done.stderr[-3000:]}'


@pytest.fixture(scope='session')
def world(tmp_path_factory) -> Path:
    """Folder with ``demo/`` (dataroot), the v1.0-mini info pkls and ``flow/``, all written by
    the CLIs with paths relative to it; built once and shared by pytest-xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent
    root = base / 'create-data-world'
    root.mkdir(exist_ok=True)
    with open(base / 'create-data-world.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / 'done').exists():
            _run('create_demo_data.py', '--out', 'demo', *WORLD_ARGS, cwd=root)
            _run('create_data_bevdet.py', '--root-path', 'demo', '--version', 'v1.0-mini',
                 '--out-dir', '.', cwd=root)
            _run('create_flow_data.py', '--info-dir', '.', '--version', 'v1.0-mini',
                 '--out-dir', 'flow', '--workers', '2', cwd=root)
            (root / 'done').touch()
    return root


def _infos(world: Path, split: str) -> list[dict]:
    return load_infos(str(world / f'bevdetv2-nuscenes-mini_infos_{split}.pkl'))[0]


def _table(world: Path, name: str) -> list[dict]:
    return json.loads((world / 'demo' / 'v1.0-mini' / f'{name}.json').read_text())


def test_infos_keys_shapes_and_splits(world):
    train, val = _infos(world, 'train'), _infos(world, 'val')
    assert len(train) == len(val) == 3
    assert {i['scene_name'] for i in train} <= set(mini_train)
    assert {i['scene_name'] for i in val} <= set(mini_val)
    for info in train + val:
        assert INFO_KEYS <= set(info), INFO_KEYS - set(info)
        n = len(info['gt_names'])
        assert n > 0 and info['gt_boxes'].shape == (n, 10) and info['sweeps'] == []
        assert len(info['gt_instance_tokens']) == n and info['gt_velocity'].shape == (n, 2)
        assert info['valid_flag'].dtype == bool and info['valid_flag'].shape == (n,)
        np.testing.assert_array_equal(
            info['valid_flag'], info['num_lidar_pts'] + info['num_radar_pts'] > 0)
        np.testing.assert_allclose(np.linalg.norm(info['gt_boxes'][:, 6:], axis=1), 1, atol=1e-9)
        assert list(info['cams']) == CAMERAS
        for cam, entry in info['cams'].items():
            assert set(entry) == CAM_KEYS and entry['type'] == cam
            assert entry['cam_intrinsic'].shape == (3, 3)
            rot = entry['sensor2lidar_rotation']
            np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
            assert (world / entry['data_path']).is_file()
        assert info['lidar_path'].startswith('demo/samples/LIDAR_TOP/')
        assert info['occ_path'] == f"demo/gts/{info['scene_name']}/{info['token']}"
        assert info['panoptic_path'] == f"demo/panoptic/v1.0-mini/{info['lidar_idx']}_panoptic.npz"
        for key in ('lidar_path', 'panoptic_path'):
            assert (world / info[key]).is_file()
        assert (world / info['occ_path'] / 'labels.npz').is_file()


def _pose(translation, rotation) -> np.ndarray:
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(rotation).rotation_matrix
    mat[:3, 3] = translation
    return mat


def test_infos_agree_with_raw_tables(world):
    """Boxes moved back to the global frame equal sample_annotation; cameras agree with lidar."""
    anns = _table(world, 'sample_annotation')
    category = {c['token']: c['name'] for c in _table(world, 'category')}
    inst_cat = {i['token']: category[i['category_token']] for i in _table(world, 'instance')}
    sd = {r['token']: r for r in _table(world, 'sample_data')}
    scenes = {s['token']: s['name'] for s in _table(world, 'scene')}
    for info in _infos(world, 'train') + _infos(world, 'val'):
        mine = [a for a in anns if a['sample_token'] == info['token']]
        assert info['gt_instance_tokens'] == [a['instance_token'] for a in mine]
        assert scenes[info['scene_token']] == info['scene_name']
        assert sd[info['lidar_idx']]['sample_token'] == info['token']
        global_from_lidar = _pose(info['ego2global_translation'], info['ego2global_rotation']) \
            @ _pose(info['lidar2ego_translation'], info['lidar2ego_rotation'])
        q_lidar = Quaternion(info['ego2global_rotation']) * Quaternion(info['lidar2ego_rotation'])
        for box, name, ann in zip(info['gt_boxes'], info['gt_names'], mine):
            np.testing.assert_allclose(global_from_lidar[:3, :3] @ box[:3]
                                       + global_from_lidar[:3, 3], ann['translation'], atol=1e-6)
            np.testing.assert_allclose(box[3:6], ann['size'], atol=1e-9)
            q = (q_lidar * Quaternion(box[6:10])).elements
            assert min(np.abs(q - ann['rotation']).max(), np.abs(q + ann['rotation']).max()) < 1e-9
            raw = inst_cat[ann['instance_token']]
            assert name == SOME_NAMES.get(raw, name)
            assert name == raw or raw in SOME_NAMES or '.' not in name
        for entry in info['cams'].values():
            record = sd[entry['sample_data_token']]
            assert entry['data_path'] == 'demo/' + record['filename']
            global_from_cam = _pose(entry['ego2global_translation'],
                                    entry['ego2global_rotation']) @ _pose(
                entry['sensor2ego_translation'], entry['sensor2ego_rotation'])
            point = np.array([1.0, -2.0, 10.0])
            via_lidar = global_from_lidar[:3, :3] @ (
                entry['sensor2lidar_rotation'] @ point + entry['sensor2lidar_translation']) \
                + global_from_lidar[:3, 3]
            np.testing.assert_allclose(via_lidar, global_from_cam[:3, :3] @ point
                                       + global_from_cam[:3, 3], atol=1e-6)


def test_flow_files_equal_dense_reference(world):
    for split, picks in (('train', (0,)), ('val', (2,))):  # first / last frame of a scene
        infos = flow_gt.sort_infos(_infos(world, split))
        for info in infos:
            assert (world / 'flow' / info['scene_name'] / f"{info['token']}.npz").is_file()
        for k in picks:
            flow, transforms, indices = reference_flow(infos, k, reuse_masks=True)
            path = world / 'flow' / infos[k]['scene_name'] / f"{infos[k]['token']}.npz"
            with np.load(path) as data:
                assert len(flow) > 0 and data['flow'].dtype == np.uint8
                np.testing.assert_array_equal(data['flow'], flow)
                np.testing.assert_array_equal(data['indices'], indices)
                np.testing.assert_allclose(data['T'], transforms, atol=1e-4)
            assert set(np.unique(flow[:, 10])) == ({3, 4} if k == 0 else {1, 2})


def test_dataset_reads_demo_infos(world):
    dataset = NuScenesDatasetOccpancy(
        str(world / 'bevdetv2-nuscenes-mini_infos_train.pkl'), occ3d_geometry(),
        path_prefix=str(world),
        flow_root=str(world / 'flow'))
    assert len(dataset) == 3
    first, last = dataset.get_data_info(0), dataset.get_data_info(2)
    assert first['render_frame_indices'] == [0, 0, 0, 0, 1, 2, 2]
    assert last['render_frame_indices'] == [0, 0, 1, 2, 2, 2, 2]
    assert last['adjacent_indices'] == [1, 0]
    for item in (first, last):
        assert os.path.isfile(item['flow_path']) and os.path.isfile(item['pts_filename'])
        assert os.path.isfile(os.path.join(item['occ_path'], 'labels.npz'))
        assert all(os.path.isfile(f['panoptic_path']) for f in item['render_frames'])


def test_converter_names_missing_or_corrupt_inputs(world, tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'v1.0-mini'))):
        nuscenes_infos.check_dataroot(str(tmp_path), 'v1.0-mini')
    root = tmp_path / 'demo'
    shutil.copytree(world / 'demo', root)
    panoptic = root / 'v1.0-mini' / 'panoptic.json'
    panoptic.rename(tmp_path / 'panoptic.json')
    with pytest.raises(FileNotFoundError, match=re.escape(str(panoptic))):
        nuscenes_infos.load_nuscenes(str(root), 'v1.0-mini')
    (tmp_path / 'panoptic.json').rename(panoptic)
    sample_json = root / 'v1.0-mini' / 'sample.json'
    good = sample_json.read_text()
    sample_json.write_text(good[:-20])
    with pytest.raises(ValueError, match=re.escape(f'{sample_json} is not valid JSON')):
        nuscenes_infos.load_nuscenes(str(root), 'v1.0-mini')
    sample_json.write_text(good)
    label = next((root / 'panoptic' / 'v1.0-mini').iterdir())
    label.rename(tmp_path / label.name)
    with pytest.raises(ValueError, match=re.escape(f"cannot load {root / 'v1.0-mini'}")):
        nuscenes_infos.load_nuscenes(str(root), 'v1.0-mini')  # devkit: label count mismatch
    (tmp_path / label.name).rename(label)
    # a scene whose first LiDAR file is missing is skipped; a later missing file is an error
    infos = _infos(world, 'train') + _infos(world, 'val')
    scene_files = {}
    for info in sorted(infos, key=lambda i: i['timestamp']):
        scene_files.setdefault(info['scene_name'], []).append(info['lidar_path'][len('demo/'):])
    (scene_a, files_a), (scene_b, files_b) = sorted(scene_files.items())
    (root / files_a[0]).unlink()
    (root / files_b[2]).unlink()
    nusc = nuscenes_infos.load_nuscenes(str(root), 'v1.0-mini')
    with pytest.raises(FileNotFoundError, match=re.escape(str(root / files_b[2]))):
        nuscenes_infos.create_infos(nusc, 'v1.0-mini', str(root / 'gts'))
    assert f'skipping {scene_a}' in caplog.text
