"""Flow ground truth (spec 5.2) against a direct, dense implementation of the original algorithm.

``reference_flow`` is the oracle: it tests all 640,000 voxel centres against every enlarged box
with nuscenes-devkit ``Box`` / ``points_in_box`` for each offset, as the original did. It is also
the baseline of tools/benchmarks/bench_flow.py.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion

from mmdet3d.datasets.converters import flow_gt
from mmdet3d.datasets.converters.info_io import dump_infos

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES = ['car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle',
           'bicycle', 'pedestrian', 'traffic_cone']
TO_OCC = [4, 10, 5, 3, 9, 1, 6, 2, 7, 8]
MOVABLE = {2, 3, 4, 5, 6, 7, 9, 10}


def _dense_grid() -> tuple[np.ndarray, np.ndarray]:
    """All voxel centres (3, 640000) x, y, z and their (640000, 3) z, y, x indices, z-major."""
    xs = np.linspace(-39.8, 39.8, 200)
    zs = np.linspace(-0.8, 5.2, 16)
    zz, yy, xx = np.meshgrid(zs, xs, xs, indexing='ij')
    iz, iy, ix = np.meshgrid(np.arange(16), np.arange(200), np.arange(200), indexing='ij')
    return (np.stack([xx.ravel(), yy.ravel(), zz.ravel()]),
            np.stack([iz.ravel(), iy.ravel(), ix.ravel()], axis=1))


def _reference_boxes(info: dict, ref: dict) -> list[tuple[Box, int, str]]:
    """Valid movable boxes of ``info`` in the LiDAR-timestamp ego frame of ``ref``."""
    out = []
    for row, name, token, valid in zip(info['gt_boxes'], info['gt_names'],
                                       info['gt_instance_tokens'], info['valid_flag']):
        if not valid:
            continue
        label = TO_OCC[CLASSES.index(name) if name in CLASSES else -1]  # -1 wraps to 8 (quirk)
        if label not in MOVABLE:
            continue
        box = Box(row[:3], row[3:6], Quaternion(row[6:10]))
        box.rotate(Quaternion(info['lidar2ego_rotation']))
        box.translate(np.array(info['lidar2ego_translation']))
        if info is not ref:
            box.rotate(Quaternion(info['ego2global_rotation']))
            box.translate(np.array(info['ego2global_translation']))
            box.translate(-np.array(ref['ego2global_translation']))
            box.rotate(Quaternion(ref['ego2global_rotation']).inverse)
        out.append((box, label, token))
    return out


def _box_matrix(box: Box) -> np.ndarray:
    mat = np.eye(4)
    mat[:3, :3] = box.rotation_matrix
    mat[:3, 3] = box.center
    return mat


def reference_flow(infos: list[dict], k: int, horizon: int = 3, wlh_factor: float = 1.15,
                   grid: tuple[np.ndarray, np.ndarray] | None = None, reuse_masks: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The original algorithm, directly: returns (flow (n, 11) uint8, T (m, 4, 4) float32,
    indices (n,) uint16) of ``infos[k]`` (infos sorted by timestamp).

    ``reuse_masks`` keeps each box's dense inside mask across offsets (same result, fewer dense
    tests); the original recomputes it for every offset."""
    points, zyx = _dense_grid() if grid is None else grid
    low, high = np.array([-40.0, -40.0, -1.0]), np.array([40.0, 40.0, 5.4])
    dims = np.array([16, 200, 200])
    info = infos[k]
    current = [b for b in _reference_boxes(info, info)
               if np.all(b[0].center > low) and np.all(b[0].center < high)]
    rows, transforms, indices, masks = [], [], [], {}
    offsets = [o for o in range(-horizon, horizon + 1) if o != 0]
    for s, offset in enumerate(offsets if current else []):
        j = k + offset
        if j < 0 or j >= len(infos) or infos[j]['scene_token'] != info['scene_token']:
            continue
        target = _reference_boxes(infos[j], info)
        target_tokens = np.array([t for _, _, t in target], dtype=object)
        matched = [(n, label, target[np.argwhere(target_tokens == token).item()][0])
                   for n, (_, label, token) in enumerate(current) if token in set(target_tokens)]
        for n, label, tgt in matched:
            src = current[n][0]
            motion = _box_matrix(tgt) @ np.linalg.inv(_box_matrix(src))
            if n not in masks:
                big = Box(src.center, src.wlh * wlh_factor + 0.4, src.orientation)
                masks[n] = np.flatnonzero(points_in_box(big, points))
            sel = masks[n] if reuse_masks else masks.pop(n)
            moved = (motion[:3, :3] @ points[:, sel]).T + motion[:3, 3]
            target_idx = np.clip(np.floor((moved - low) / 0.4)[:, ::-1], 0, dims - 1)
            corner = np.clip(np.floor((moved + 1e-5 - low - 0.2) / 0.4)[:, ::-1], 0, dims - 1)
            block = np.concatenate([zyx[sel], target_idx, corner, np.full((len(sel), 1), label),
                                    np.full((len(sel), 1), s)], axis=1)
            rows.append(block.astype(np.uint8))
            indices.append(np.full(len(sel), len(transforms), dtype=np.uint16))
            transforms.append(motion.astype(np.float32))
    if not transforms:
        return np.zeros((0, 11), np.uint8), np.zeros((0, 4, 4), np.float32), np.zeros(0, np.uint16)
    return np.concatenate(rows), np.stack(transforms), np.concatenate(indices)


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
    return _dense_grid()


def _assert_same(ref: tuple[np.ndarray, np.ndarray, np.ndarray], gt: flow_gt.FlowGT) -> None:
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


def _tool(name: str):
    """A tools/ script imported as a module (its ``main(argv)`` is the CLI, run in-process)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_resumes_and_overwrites(tmp_path):
    infos = make_infos(4, n_scenes=2, n_frames=3)
    dump_infos(str(tmp_path / 'x-mini_infos_train.pkl'), infos, 'v1.0-mini')
    out = tmp_path / 'flow'
    common = ['--info-dir', str(tmp_path), '--version', 'v1.0-mini', '--extra-tag', 'x',
              '--splits', 'train', '--out-dir', str(out)]
    cli = _tool('create_flow_data')
    cli.main([*common, '--workers', '2'])
    ordered = flow_gt.sort_infos(infos)
    for k, info in enumerate(ordered):
        with np.load(out / info['scene_name'] / f"{info['token']}.npz") as data:
            assert sorted(data.files) == ['T', 'flow', 'indices']
            np.testing.assert_array_equal(data['flow'], flow_gt.sample_flow(ordered, k).flow)
    assert not [p for p in out.rglob('*') if p.is_file() and not p.name.endswith('.npz')]
    marker = out / ordered[0]['scene_name'] / f"{ordered[0]['token']}.npz"
    marker.write_bytes(b'stale')
    cli.main([*common, '--workers', '0'])
    assert marker.read_bytes() == b'stale'  # resumed: existing files are kept
    cli.main([*common, '--workers', '0', '--overwrite'])
    with np.load(marker) as data:
        np.testing.assert_array_equal(data['flow'], flow_gt.sample_flow(ordered, 0).flow)


def test_cli_names_missing_or_corrupt_info_file(tmp_path):
    common = ['--info-dir', str(tmp_path), '--version', 'v1.0-mini', '--splits', 'train',
              '--out-dir', str(tmp_path / 'flow')]
    cli = _tool('create_flow_data')
    path = tmp_path / 'bevdetv2-nuscenes-mini_infos_train.pkl'
    with pytest.raises(FileNotFoundError, match=str(path)):
        cli.main(common)
    path.write_bytes(b'\x80\x04garbage')
    with pytest.raises(ValueError, match=f'cannot read info file {path}'):
        cli.main(common)
    infos = make_infos(5, n_scenes=1, n_frames=2)
    del infos[1]['gt_instance_tokens']
    dump_infos(str(path), infos, 'v1.0-mini')
    with pytest.raises(KeyError, match=r"sample-0-\d.*'gt_instance_tokens'"):
        cli.main(common)
