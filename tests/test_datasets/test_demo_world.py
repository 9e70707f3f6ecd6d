"""The synthetic demo dataset: devkit compatibility, geometric consistency, determinism."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import points_in_box, transform_matrix, view_points
from nuscenes.utils.splits import mini_train, mini_val
from PIL import Image
from pyquaternion import Quaternion

from mmdet3d.datasets.synthetic import DemoConfig, generate, scene_names
from mmdet3d.datasets.synthetic import classes as C
from mmdet3d.datasets.synthetic.check import DemoDataError, check_dataset
from mmdet3d.datasets.synthetic.generator import MINI_TRAIN, MINI_VAL
from mmdet3d.structures.occ3d import LIDARSEG_TO_OCC3D
from tools import create_demo_data

SMALL = DemoConfig(scenes=3, samples_per_scene=3, sweeps_per_sample=1, image_size=(320, 180))
TINY = DemoConfig(scenes=1, samples_per_scene=2, sweeps_per_sample=1, image_size=(96, 54))
GRID_LOWER = np.array([-40.0, -40.0, -1.0])


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp('demo') / 'demo', SMALL, progress=False)


@pytest.fixture(scope='session')
def nusc(demo_root) -> NuScenes:
    return NuScenes('v1.0-mini', str(demo_root), verbose=False)


def _transform(rec: dict) -> np.ndarray:
    """The devkit's (4, 4) matrix of a calibrated_sensor / ego_pose record."""
    return transform_matrix(rec['translation'], Quaternion(rec['rotation']))


def _lidar_to(nusc: NuScenes, lidar_sd: dict, target_sd: dict | None) -> np.ndarray:
    """(4, 4) LiDAR -> target sensor frame (or LiDAR -> ego if ``target_sd`` is None)."""
    lidar2ego = _transform(nusc.get('calibrated_sensor', lidar_sd['calibrated_sensor_token']))
    if target_sd is None:
        return lidar2ego
    ego2global = _transform(nusc.get('ego_pose', lidar_sd['ego_pose_token']))
    cam_ego2global = _transform(nusc.get('ego_pose', target_sd['ego_pose_token']))
    cam2ego = _transform(nusc.get('calibrated_sensor', target_sd['calibrated_sensor_token']))
    return np.linalg.inv(cam2ego) @ np.linalg.inv(cam_ego2global) @ ego2global @ lidar2ego


def _keyframe(nusc: NuScenes, sample: dict):
    sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
    pc = LidarPointCloud.from_file(nusc.get_sample_data_path(sd['token']))
    seg = np.fromfile(Path(nusc.dataroot) / nusc.get('lidarseg', sd['token'])['filename'],
                      dtype=np.uint8)
    pan = np.load(Path(nusc.dataroot) / nusc.get('panoptic', sd['token'])['filename'])['data']
    return sd, pc, seg, pan


def test_devkit_loads_with_mini_split(nusc, demo_root):
    names = [s['name'] for s in nusc.scene]
    assert names == scene_names(3) == ['scene-0061', 'scene-0103', 'scene-0916']
    assert {n for n in names if n in mini_val} == set(mini_val)
    assert names[0] in mini_train
    assert (list(MINI_TRAIN), list(MINI_VAL)) == (mini_train, mini_val)
    assert all('synthetic' in s['description'].lower() for s in nusc.scene)
    assert (demo_root / 'SYNTHETIC_DATA.md').is_file() and (demo_root / '.ready').is_file()
    assert len(nusc.sample) == 9
    for sample in nusc.sample:
        assert set(sample['data']) == {'LIDAR_TOP', 'CAM_FRONT', 'CAM_FRONT_RIGHT',
                                       'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
                                       'CAM_BACK_RIGHT'}
        path, boxes, k = nusc.get_sample_data(sample['data']['CAM_FRONT'])
        assert Image.open(path).size == (320, 180)
        assert k[0, 2] == pytest.approx(816.3 * 0.2) and k[1, 1] == pytest.approx(1266.4 * 0.2)
        assert Path(path).is_file() and path.endswith('.jpg')
        occ = demo_root / 'gts' / nusc.get('scene', sample['scene_token'])['name'] / \
            sample['token'] / 'labels.npz'
        assert occ.is_file()
    for ann in nusc.sample_annotation:
        assert ann['category_name'] in C.LIDARSEG_NAMES[1:24]
        assert len(ann['size']) == 3 and ann['num_radar_pts'] == 0


def test_token_chains(nusc):
    for scene in nusc.scene:
        chain, token = [], scene['first_sample_token']
        while token:
            chain.append(nusc.get('sample', token))
            token = chain[-1]['next']
        assert len(chain) == scene['nbr_samples'] and chain[-1]['token'] == \
            scene['last_sample_token']
        assert all(b['prev'] == a['token'] for a, b in zip(chain, chain[1:]))
        assert np.all(np.diff([s['timestamp'] for s in chain]) == 500_000)
        # LiDAR: keyframes and sweeps interleaved, every sweep points at the next sample
        sd = nusc.get('sample_data', chain[0]['data']['LIDAR_TOP'])
        records = [sd]
        while records[-1]['next']:
            records.append(nusc.get('sample_data', records[-1]['next']))
        assert [r['is_key_frame'] for r in records] == [True, False, True, False, True]
        assert all(r['sample_token'] == chain[i // 2 + (i % 2)]['token']
                   for i, r in enumerate(records))
        assert all(r['filename'].startswith('sweeps/') != r['is_key_frame'] for r in records)
        assert all(b['prev'] == a['token'] for a, b in zip(records, records[1:]))
        assert np.all(np.diff([r['timestamp'] for r in records]) > 0)
    for inst in nusc.instance:
        anns = [nusc.get('sample_annotation', inst['first_annotation_token'])]
        while anns[-1]['next']:
            anns.append(nusc.get('sample_annotation', anns[-1]['next']))
        assert len(anns) == inst['nbr_annotations']
        assert anns[-1]['token'] == inst['last_annotation_token']
        assert all(a['instance_token'] == inst['token'] for a in anns)


def test_lidar_files_and_labels(nusc):
    for sample in nusc.sample:
        sd, pc, seg, pan = _keyframe(nusc, sample)
        raw = np.fromfile(nusc.get_sample_data_path(sd['token']), dtype=np.float32)
        assert raw.size == 5 * pc.nbr_points() and pc.nbr_points() > 5000
        ring = raw.reshape(-1, 5)[:, 4]
        assert ring.min() >= 0 and ring.max() <= 31 and np.all(ring == np.round(ring))
        assert seg.shape == pan.shape == (pc.nbr_points(),) and pan.dtype == np.uint16
        assert np.array_equal(pan // 1000, seg)
        stuff = seg >= C.STUFF_START
        assert np.all(pan[stuff] % 1000 == 0) and np.all(pan[~stuff] % 1000 > 0)
        assert len(np.unique(seg)) >= 8


def _nearest_class(rgb: np.ndarray, classes: list[int]) -> np.ndarray:
    """Index into ``classes`` of the colour that best explains each pixel up to shading."""
    cols = np.array([C.CLASS_COLORS[c] for c in classes], dtype=np.float64)
    scale = np.clip(rgb @ cols.T / np.sum(cols ** 2, axis=1), 0.4, 1.2)  # (P, K)
    err = np.linalg.norm(rgb[:, None, :] - scale[..., None] * cols[None], axis=-1)
    return np.argmin(err, axis=1)


def test_points_project_onto_pixels_of_their_class(nusc):
    classes = sorted(C.CLASS_COLORS)
    hits, total = 0, 0
    for sample in nusc.sample[::2]:
        sd, pc, seg, _ = _keyframe(nusc, sample)
        for cam in ('CAM_FRONT', 'CAM_BACK_LEFT', 'CAM_BACK'):
            cam_sd = nusc.get('sample_data', sample['data'][cam])
            path, _, k = nusc.get_sample_data(cam_sd['token'])
            img = np.asarray(Image.open(path), dtype=np.float64)
            pts = _lidar_to(nusc, sd, cam_sd) @ np.vstack([pc.points[:3], np.ones(pc.nbr_points())])
            depth = pts[2]
            uv = view_points(pts[:3], k, normalize=True)[:2]
            u, v = np.floor(uv).astype(int)
            ok = (depth > 1.0) & (depth < 30.0) & (u >= 0) & (v >= 0) & \
                (u < img.shape[1]) & (v < img.shape[0])
            pred = _nearest_class(img[v[ok], u[ok]], classes)
            hits += int(np.sum(np.asarray(classes)[pred] == seg[ok]))
            total += int(ok.sum())
    assert total > 2000
    assert hits / total > 0.85, hits / total


def _occ(root: Path, nusc: NuScenes, sample: dict) -> dict[str, np.ndarray]:
    scene = nusc.get('scene', sample['scene_token'])['name']
    return dict(np.load(root / 'gts' / scene / sample['token'] / 'labels.npz'))


def test_points_fall_in_occ3d_voxels_of_their_class(nusc, demo_root):
    for sample in nusc.sample:
        sd, pc, seg, _ = _keyframe(nusc, sample)
        gt = _occ(demo_root, nusc, sample)
        for key in ('semantics', 'mask_lidar', 'mask_camera'):
            assert gt[key].shape == (200, 200, 16) and gt[key].dtype == np.uint8
        pts = _lidar_to(nusc, sd, None) @ np.vstack([pc.points[:3], np.ones(pc.nbr_points())])
        idx = np.floor((pts[:3].T - GRID_LOWER) / 0.4).astype(int)
        inside = np.all((idx >= 0) & (idx < [200, 200, 16]), axis=1)
        ix, iy, iz = idx[inside].T
        voxel_cls = gt['semantics'][ix, iy, iz]
        agree = voxel_cls == LIDARSEG_TO_OCC3D[seg[inside]]
        assert inside.sum() > 3000 and agree.mean() > 0.95, agree.mean()
        assert np.all(gt['mask_lidar'][ix, iy, iz] == 1)
        assert np.all(gt['mask_camera'] <= gt['mask_lidar'])
        assert 0.01 < gt['mask_camera'].mean() < gt['mask_lidar'].mean()
        assert len(np.unique(gt['semantics'][gt['mask_camera'] == 1])) >= 8


def test_boxes_contain_their_instance_points(nusc):
    checked = 0
    for sample in nusc.sample:
        sd, pc, seg, pan = _keyframe(nusc, sample)
        _, boxes, _ = nusc.get_sample_data(sd['token'])
        for box in boxes:
            ann = nusc.get('sample_annotation', box.token)
            inside = points_in_box(box, pc.points[:3])
            assert inside.sum() == ann['num_lidar_pts']
            if ann['num_lidar_pts'] == 0:
                continue
            values = np.unique(pan[inside])
            assert len(values) == 1 and values[0] // 1000 == \
                C.LIDARSEG_INDEX[ann['category_name']]
            assert np.sum(pan == values[0]) == ann['num_lidar_pts']
            checked += 1
    assert checked > 20


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / 'a', TINY, progress=False)
    b = generate(tmp_path / 'b', TINY, progress=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob('*') if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob('*') if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    c = generate(tmp_path / 'c', DemoConfig(**{**TINY.__dict__, 'seed': 1}), progress=False)
    assert (c / 'v1.0-mini' / 'ego_pose.json').read_bytes() != \
        (a / 'v1.0-mini' / 'ego_pose.json').read_bytes()
    # regenerating in place swaps the folder: no stale files, no leftovers beside it
    stale = a / 'samples' / 'stale.txt'
    stale.write_text('x')
    generate(a, TINY, progress=False)
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['a', 'b', 'c']
    check_dataset(a)


def test_check_names_missing_or_corrupt_file(tmp_path):
    root = generate(tmp_path / 'demo', TINY, progress=False)
    nusc_tables = json.loads((root / 'v1.0-mini' / 'sample_data.json').read_text())
    pcd = root / next(r['filename'] for r in nusc_tables if r['filename'].endswith('.bin'))
    pcd.write_bytes(pcd.read_bytes()[:-8])
    with pytest.raises(DemoDataError, match=re.escape(pcd.name)):
        check_dataset(root)
    pcd.unlink()
    with pytest.raises(DemoDataError, match=re.escape(pcd.name)):
        check_dataset(root)


@pytest.mark.parametrize('field, value', [('scenes', 11), ('samples_per_scene', 1),
                                          ('sweeps_per_sample', -1), ('image_size', (8, 8))])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DemoConfig(**{field: value}).validate()


def test_cli_rejects_bad_arguments_by_name(capsys):
    with pytest.raises(SystemExit):
        create_demo_data.parse_args(['--out', 'x', '--image-size', '800by450'])
    assert '--image-size' in capsys.readouterr().err
    with pytest.raises(SystemExit, match='scenes'):
        create_demo_data.main(['--out', 'x', '--scenes', '0'])
    assert create_demo_data.parse_args(['--out', 'x']).image_size == (800, 450)


@pytest.mark.parametrize('left_hand', [False, True])
def test_street_layout_varies_and_traffic_keeps_to_its_side(left_hand):
    """Each scene draws its own cross-section; the ego lane is on the location's traffic side,
    on the road, with the oncoming traffic on the other half of the road."""
    from mmdet3d.datasets.synthetic.raycast import ground_class
    from mmdet3d.datasets.synthetic.world import build_world

    worlds = [build_world(np.random.default_rng([7, i]), 10.0, left_hand) for i in range(4)]
    bands = np.stack([w.layout.bands() for w in worlds])
    assert len(np.unique(bands[:, 0])) == 4 and len(np.unique(bands[:, 1] - bands[:, 0])) == 4
    assert np.all((bands[:, 0] >= 4.0) & (bands[:, 0] <= 7.0))
    assert np.all(np.diff(bands, axis=1) > 2.0)
    for world in worlds:
        ego_y = world.ego_pose(3.0)[1, 3]
        assert (ego_y > 0) == left_hand
        args = world.ground_params()
        assert ground_class(world.cross_x + 200.0, ego_y, *args) == C.DRIVEABLE
        sidewalk_y = np.sign(ego_y) * (world.layout.road_half_width + 0.5)
        assert ground_class(world.cross_x + 200.0, sidewalk_y, *args) == C.SIDEWALK
        vehicles = np.isin(world.agents.label, [C.CAR, C.TRUCK, C.BUS])
        with_ego = world.agents.vx[vehicles] > 0
        assert np.all(np.sign(world.agents.y0[vehicles][with_ego]) == np.sign(ego_y))
        assert np.all(np.sign(world.agents.y0[vehicles][~with_ego]) == -np.sign(ego_y))
