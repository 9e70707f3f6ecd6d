"""The flow-mechanism figure: a hand-built moving box with a known answer, and the CLI on a tiny
generated demo world."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mmdet3d.analysis import flow_mechanism as fm
from mmdet3d.datasets.converters.flow_gt import sample_flow, sort_infos
from mmdet3d.formats.flow_rows import flow_path, save_flow
from mmdet3d.structures.occ3d import GRID_LOWER, GRID_SHAPE, VOXEL_SIZE
from tools import create_data_bevdet, create_demo_data, create_flow_data
from tools.analysis_tools import flow_mechanism as cli

IDENTITY_Q = [1.0, 0.0, 0.0, 0.0]
# (instance token, detection name, lidarseg index, Occ3D label, wlh, centre at t=0, at t=1)
OBJECTS = (
    ('walker', 'pedestrian', 2, 7, (0.7, 0.7, 1.75), (10.0, 0.0, 0.0), (12.0, 0.0, 0.0)),
    ('parked', 'car', 17, 4, (1.9, 4.5, 1.6), (0.0, 10.0, 0.0), (0.0, 10.0, 0.0)),
)


def _surface_points(center, wlh, n: int = 10) -> np.ndarray:
    """(4 n^2, 3) points 1 cm inside the four vertical faces of an axis-aligned box."""
    half = np.array([wlh[1], wlh[0], wlh[2]]) / 2 - 0.01
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n)))
    faces = [np.stack([np.full_like(u, s), u, v], 1) for s in (-1, 1)]
    faces += [np.stack([u, np.full_like(u, s), v], 1) for s in (-1, 1)]
    return np.asarray(center) + np.concatenate(faces) * half


def _write_labels(path, k: int) -> None:
    """Occ3D labels.npz of frame k: each object's label in every voxel its box overlaps."""
    sem = np.full(GRID_SHAPE, 17, dtype=np.uint8)
    lower = np.asarray(GRID_LOWER)
    for obj in OBJECTS:
        wlh, centre = np.asarray(obj[4]), np.asarray(obj[5 + k])
        half = np.array([wlh[1], wlh[0], wlh[2]]) / 2
        lo = np.floor((centre - half - lower) / VOXEL_SIZE).astype(int)
        hi = np.floor((centre + half - lower) / VOXEL_SIZE).astype(int)
        sem[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = obj[3]
    path.mkdir(parents=True)
    ones = np.ones(GRID_SHAPE, dtype=np.uint8)
    np.savez_compressed(path / 'labels.npz', semantics=sem, mask_lidar=ones, mask_camera=ones)


@pytest.fixture
def moving_box_world(tmp_path):
    """Two keyframes 0.5 s apart of one scene, identity poses: a pedestrian box that moves 2 m
    along x (10 -> 12 m) and a parked car; each frame's LiDAR points lie on both boxes."""
    infos = []
    for k in range(2):
        points = [_surface_points(obj[5 + k], obj[4]) for obj in OBJECTS]
        panoptic = np.concatenate([np.full(len(p), obj[2] * 1000 + i + 1)
                                   for i, (obj, p) in enumerate(zip(OBJECTS, points))])
        cloud = np.zeros((len(panoptic), 5), dtype=np.float32)
        cloud[:, :3] = np.concatenate(points)
        cloud.tofile(tmp_path / f'lidar{k}.bin')
        np.savez_compressed(tmp_path / f'panoptic{k}.npz', data=panoptic.astype(np.uint16))
        occ = tmp_path / 'gts' / 'scene' / f'tok{k}'
        _write_labels(occ, k)
        infos.append(dict(
            token=f'tok{k}', scene_name='scene', scene_token='scene', timestamp=k * 500000,
            lidar_path=str(tmp_path / f'lidar{k}.bin'),
            panoptic_path=str(tmp_path / f'panoptic{k}.npz'), occ_path=str(occ),
            lidar2ego_translation=[0.0, 0.0, 0.0], lidar2ego_rotation=IDENTITY_Q,
            ego2global_translation=[0.0, 0.0, 0.0], ego2global_rotation=IDENTITY_Q,
            gt_boxes=np.array([[*obj[5 + k], *obj[4], *IDENTITY_Q] for obj in OBJECTS]),
            gt_names=np.array([obj[1] for obj in OBJECTS]),
            gt_instance_tokens=np.array([obj[0] for obj in OBJECTS], dtype=object),
            valid_flag=np.array([True, True])))
    sorted_infos = sort_infos(infos)
    flow_root = str(tmp_path / 'flow')
    for k in range(2):  # the project's flow GT (create_flow_data.py's computation)
        save_flow(flow_path(flow_root, sorted_infos[k]), sample_flow(sorted_infos, k))
    return infos, flow_root


@pytest.mark.parametrize('key', [0, 1])
def test_moving_box_known_answer(moving_box_world, key):
    """Key frame 0 with frame +1, and key frame 1 with frame -1: 0 % of the walker's points
    inside its key-frame box without flow, 100 % with; the parked car 100 % in both."""
    infos, flow_root = moving_box_world
    records = fm.measure_sample(infos, key, flow_path(flow_root, infos[key]),
                                render_frame_ids=(-1, 0, 1))
    assert set(records.offset.tolist()) == {1 - 2 * key}
    assert not records.clamped.any() and records.has_flow.all()
    np.testing.assert_allclose(np.unique(records.displacement), [0.0, 2.0], atol=1e-9)
    summary = fm.summarize(records)
    moving, static = summary['moving']['all'], summary['static']['all']
    assert moving['points'] == static['points'] == 4 * 10 * 10
    assert list(summary['moving']['per_class']) == ['pedestrian']
    assert list(summary['static']['per_class']) == ['car']
    assert moving['inside_without'] == 0.0 and moving['inside_with'] == 100.0
    assert moving['hit_without'] == 0.0 and moving['hit_with'] == 100.0
    assert static['inside_without'] == static['inside_with'] == 100.0
    assert static['hit_without'] == static['hit_with'] == 100.0
    assert summary['slow']['all']['points'] == summary['clamped']['all']['points'] == 0


def test_flow_transform_matched(moving_box_world):
    """The stored transform of the walker for offset +1 is its 2 m shift."""
    infos, flow_root = moving_box_world
    _, transforms, frame_of = fm.load_flow_file(flow_path(flow_root, infos[0]))
    key = fm.all_boxes(infos[0], np.eye(4))
    other = fm.all_boxes(infos[1], np.eye(4))
    index = fm.match_flow_transforms(transforms, frame_of, 3, key, other)  # s = 3: offset +1
    assert (index >= 0).all()
    np.testing.assert_allclose(transforms[index][:, :3, 3], [[2, 0, 0], [0, 0, 0]], atol=1e-5)
    assert (fm.match_flow_transforms(transforms, frame_of, 2, key, other) == -1).all()


def test_cli_on_tiny_world(tmp_path):
    root = str(tmp_path / 'demo')
    create_demo_data.main(['--out', root, '--scenes', '2', '--samples-per-scene', '4',
                           '--sweeps-per-sample', '1', '--image-size', '400x225',
                           '--no-progress'])
    create_data_bevdet.main(['--root-path', root, '--version', 'v1.0-mini', '--out-dir', root])
    create_flow_data.main(['--info-dir', root, '--version', 'v1.0-mini', '--out-dir',
                           f'{root}/flow', '--workers', '0'])
    out = tmp_path / 'fm.json'
    result = cli.main(['--info', f'{root}/bevdetv2-nuscenes-mini_infos_train.pkl',
                       '--data-root', root, '--flow-root', f'{root}/flow', '--json', str(out),
                       '--no-progress'])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    moving = result['summary']['moving']['all']
    static = result['summary']['static']['all']
    assert moving['points'] > 1000
    assert moving['inside_with'] > 90
    assert moving['inside_without'] < moving['inside_with'] - 30
    assert moving['hit_with'] > moving['hit_without'] + 30
    assert static['points'] > 100
    assert static['inside_without'] > 99 and static['inside_with'] > 99
