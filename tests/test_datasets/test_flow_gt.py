"""Flow ground truth (spec 5.2) against a direct, dense implementation of the original algorithm
(``mmdet3d.testing.flow_oracle.reference_flow``)."""
from __future__ import annotations


import numpy as np
import pytest
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion

from mmdet3d.datasets.converters import flow_gt
from mmdet3d.formats.flow_rows import FlowGT
from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.testing.flow_oracle import CLASSES, reference_flow
from mmdet3d.testing.flow_oracle import dense_grid as build_dense_grid
from tools import create_flow_data



def make_infos(seed: int, n_scenes: int = 2, n_frames: int = 5, n_agents: int = 7) -> list[dict]:
    """Hand-made infos (shuffled): moving ego, agents of mixed classes (some not movable, some
    invalid, some missing in some frames, one leaving the grid), boxes in the LiDAR frame."""
    rng = np.random.default_rng(seed)
    lidar_q = Quaternion(axis=[0, 0, 1], angle=-np.pi / 2)
    lidar_t = np.array([0.94, 0.0, 1.84])
    names = CLASSES + ['animal']
    infos = []
    for scene in range(n_scenes):
        ego_xy, ego_v, ego_yaw = rng.uniform(-500, 500, 2), rng.uniform(2, 8), rng.uniform(-3, 3)
        agent_xy = rng.uniform(-30, 30, (n_agents, 2))
        agent_xy[0] = [37.5, 0.0]  # leaves the grid: targets are clamped
        agent_v = rng.uniform(-6, 6, (n_agents, 2))
        agent_v[0] = [12.0, 0.0]
        agent_z = rng.uniform(-0.5, 1.5, n_agents)
        agent_yaw = rng.uniform(-np.pi, np.pi, n_agents)
        agent_size = rng.uniform([0.5, 0.5, 1.0], [3.0, 12.0, 4.0], (n_agents, 3))
        agent_name = [names[i] for i in rng.integers(0, len(names), n_agents)]
        agent_name[0] = 'car'
        for frame in range(n_frames):
            t = 0.5 * frame
            ego_q = Quaternion(axis=[0, 0, 1], angle=ego_yaw + 0.05 * frame)
            ego_pos = np.array([*(ego_xy + ego_v * t * np.array([np.cos(ego_yaw),
                                                                  np.sin(ego_yaw)])), 0.0])
            rows, box_names, tokens, valid = [], [], [], []
            for a in range(n_agents):
                if a > 0 and rng.random() < 0.15:
                    continue  # not annotated in this frame
                # agent position relative to the ego at frame 0, rotated into the global frame
                local = np.array([*(agent_xy[a] + agent_v[a] * t), agent_z[a]])
                first_q = Quaternion(axis=[0, 0, 1], angle=ego_yaw)
                centre = first_q.rotate(local) + np.array([*ego_xy, 0.0])
                box_q = first_q * Quaternion(axis=[0, 0, 1], angle=agent_yaw[a] + 0.1 * t)
                centre = lidar_q.inverse.rotate(ego_q.inverse.rotate(centre - ego_pos) - lidar_t)
                q = lidar_q.inverse * ego_q.inverse * box_q
                rows.append([*centre, *agent_size[a], *q.elements])
                box_names.append(agent_name[a])
                tokens.append(f'inst-{scene}-{a}')
                valid.append(rng.random() > 0.1)
            infos.append(dict(
                token=f'sample-{scene}-{frame}', scene_name=f'scene-{scene:04d}',
                scene_token=f'scene-token-{scene}',
                timestamp=10**15 + scene * 10**8 + frame * 500000,
                ego2global_translation=list(ego_pos), ego2global_rotation=list(ego_q.elements),
                lidar2ego_translation=list(lidar_t), lidar2ego_rotation=list(lidar_q.elements),
                gt_boxes=np.array(rows).reshape(-1, 10), gt_names=np.array(box_names),
                gt_instance_tokens=tokens, valid_flag=np.array(valid, dtype=bool)))
    rng.shuffle(infos)
    return infos


@pytest.fixture(scope='module')
def dense_grid() -> tuple[np.ndarray, np.ndarray]:
    return build_dense_grid()


def _assert_same(ref: tuple[np.ndarray, np.ndarray, np.ndarray], gt: FlowGT) -> None:
    assert gt.flow.dtype == np.uint8 and gt.flow.shape[1:] == (11,)
    assert gt.transforms.dtype == np.float32 and gt.indices.dtype == np.uint16
    np.testing.assert_array_equal(gt.flow, ref[0])
    np.testing.assert_array_equal(gt.indices, ref[2])
    np.testing.assert_allclose(gt.transforms, ref[1], atol=1e-4)


def test_voxels_in_box_equals_dense_points_in_box(dense_grid):
    points, zyx = dense_grid
    rng = np.random.default_rng(1)
    for n in range(12):
        centre = rng.uniform([-44, -44, -2], [44, 44, 6.5])
        if n == 0:
            centre = np.array([0.2, 0.2, 0.2])  # voxel-aligned: edges on voxel faces
        q = Quaternion(axis=rng.normal(size=3) if n % 3 else [0, 0, 1],
                       angle=rng.uniform(-np.pi, np.pi))
        wlh = rng.uniform(0.3, 9.0, 3)
        expected = zyx[points_in_box(Box(centre, wlh, q), points)]
        got = flow_gt.voxels_in_box(centre, q.rotation_matrix, wlh)
        np.testing.assert_array_equal(got, expected)


def test_sample_flow_equals_reference_on_handmade_infos(dense_grid):
    infos = flow_gt.sort_infos(make_infos(0))
    assert [info['token'] for info in infos[:2]] == ['sample-0-0', 'sample-0-1']
    seen_frames, clamped = set(), False
    for k in range(len(infos)):
        ref = reference_flow(infos, k, grid=dense_grid, reuse_masks=True)
        gt = flow_gt.sample_flow(infos, k)
        _assert_same(ref, gt)
        seen_frames |= set(gt.flow[:, 10].tolist())
        clamped |= bool(np.any(gt.flow[:, 5] == 199))
    # every stored offset index occurs, scene boundaries cut the rest; the leaving car is clamped
    assert seen_frames == set(range(6)) and clamped
    first, last = infos[0], infos[4]
    assert set(flow_gt.sample_flow(infos, 0).flow[:, 10]) <= {3, 4, 5}, first['token']
    assert set(flow_gt.sample_flow(infos, 4).flow[:, 10]) <= {0, 1, 2}, last['token']


def test_sample_flow_other_horizon_and_factor(dense_grid):
    infos = flow_gt.sort_infos(make_infos(2, n_scenes=1, n_frames=4))
    for k in (0, 2):
        _assert_same(reference_flow(infos, k, horizon=1, wlh_factor=1.0, grid=dense_grid),
                     flow_gt.sample_flow(infos, k, horizon=1, wlh_factor=1.0))


def test_empty_and_duplicate_cases():
    infos = flow_gt.sort_infos(make_infos(3, n_scenes=1, n_frames=3))
    lonely = dict(infos[1], scene_token='elsewhere')
    gt = flow_gt.sample_flow([infos[0], lonely, infos[2]], 1)
    assert gt.flow.shape == (0, 11) and gt.transforms.shape == (0, 4, 4)
    assert gt.indices.shape == (0,)
    doubled = dict(infos[2])
    for key in ('gt_boxes', 'gt_names', 'gt_instance_tokens', 'valid_flag'):
        doubled[key] = np.concatenate([np.asarray(infos[2][key])] * 2)
    with pytest.raises(ValueError, match='more than once'):
        flow_gt.sample_flow([infos[0], infos[1], doubled], 1)
    broken = dict(infos[0], gt_boxes=np.zeros((len(infos[0]['gt_names']), 7)))
    with pytest.raises(ValueError, match=r'gt_boxes \(N, 10\)'):
        flow_gt.sample_flow([broken], 0)


def test_cli_writes_resumes_and_overwrites(tmp_path):
    infos = make_infos(4, n_scenes=2, n_frames=3)
    dump_infos(str(tmp_path / 'x-mini_infos_train.pkl'), infos, 'v1.0-mini')
    out = tmp_path / 'flow'
    common = ['--info-dir', str(tmp_path), '--version', 'v1.0-mini', '--extra-tag', 'x',
              '--splits', 'train', '--out-dir', str(out)]
    create_flow_data.main([*common, '--workers', '2'])
    ordered = flow_gt.sort_infos(infos)
    for k, info in enumerate(ordered):
        with np.load(out / info['scene_name'] / f"{info['token']}.npz") as data:
            assert sorted(data.files) == ['T', 'flow', 'indices']
            np.testing.assert_array_equal(data['flow'], flow_gt.sample_flow(ordered, k).flow)
    assert not [p for p in out.rglob('*') if p.is_file() and not p.name.endswith('.npz')]
    marker = out / ordered[0]['scene_name'] / f"{ordered[0]['token']}.npz"
    marker.write_bytes(b'stale')
    create_flow_data.main([*common, '--workers', '0'])
    assert marker.read_bytes() == b'stale'  # resumed: existing files are kept
    create_flow_data.main([*common, '--workers', '0', '--overwrite'])
    with np.load(marker) as data:
        np.testing.assert_array_equal(data['flow'], flow_gt.sample_flow(ordered, 0).flow)


def test_cli_names_missing_or_corrupt_info_file(tmp_path):
    common = ['--info-dir', str(tmp_path), '--version', 'v1.0-mini', '--splits', 'train',
              '--out-dir', str(tmp_path / 'flow')]
    path = tmp_path / 'bevdetv2-nuscenes-mini_infos_train.pkl'
    with pytest.raises(FileNotFoundError, match=str(path)):
        create_flow_data.main(common)
    path.write_bytes(b'\x80\x04garbage')
    with pytest.raises(ValueError, match=f'cannot read info file {path}'):
        create_flow_data.main(common)
    infos = make_infos(5, n_scenes=1, n_frames=2)
    del infos[1]['gt_instance_tokens']
    dump_infos(str(path), infos, 'v1.0-mini')
    with pytest.raises(KeyError, match=r"sample-0-\d.*'gt_instance_tokens'"):
        create_flow_data.main(common)
