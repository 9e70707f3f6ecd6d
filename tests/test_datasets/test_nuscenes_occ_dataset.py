"""NuScenesDatasetOccpancy: sorting, adjacent/render frames at scene boundaries, paths, errors."""
from __future__ import annotations

import pickle
import random

import pytest

from mmdet3d.datasets.nuscenes_occ_dataset import RENDER_FRAME_KEYS, NuScenesDatasetOccpancy
from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.registry import DATASETS
from mmdet3d.testing.geometry import OCC3D_GEOMETRY, occ3d_geometry

SCENE_LENGTHS = (('scene-a', 4), ('scene-b', 2), ('scene-c', 5))  # sorted indices 0-3, 4-5, 6-10


def _infos() -> list[dict]:
    infos = []
    for s, (scene, length) in enumerate(SCENE_LENGTHS):
        for f in range(length):
            token = f'{scene}-{f}'
            infos.append(dict(
                token=token, timestamp=1_500_000_000_000_000 + s * 10**8 + f * 500_000,
                scene_name=scene, scene_token=f'tok-{scene}',
                lidar_path=f'data/nuscenes/samples/LIDAR_TOP/{token}.pcd.bin',
                lidar_idx=f'lidar-{token}',
                panoptic_path=f'data/nuscenes/panoptic/v1.0-mini/lidar-{token}_panoptic.npz',
                occ_path=f'data/gts/{scene}/{token}',
                lidar2ego_translation=[0.9, 0.0, 1.8], lidar2ego_rotation=[1.0, 0, 0, 0],
                ego2global_translation=[float(f), 0.0, 0.0], ego2global_rotation=[1.0, 0, 0, 0],
                cams=dict(CAM_FRONT=dict(data_path=f'data/nuscenes/samples/CAM_FRONT/{token}.jpg')),
                gt_boxes=[]))
    random.Random(0).shuffle(infos)
    return infos


@pytest.fixture()
def ann_file(tmp_path) -> str:
    path = str(tmp_path / 'infos.pkl')
    dump_infos(path, _infos(), 'v1.0-mini')
    return path


# index -> (adjacent [t-1, t-2], render frames t-3..t+3), written out by hand
EXPECTED = {
    0: ([0, 0], [0, 0, 0, 0, 1, 2, 3]),
    1: ([0, 0], [0, 0, 0, 1, 2, 3, 1]),
    3: ([2, 1], [0, 1, 2, 3, 3, 3, 3]),
    4: ([4, 4], [4, 4, 4, 4, 5, 4, 4]),
    5: ([4, 5], [5, 5, 4, 5, 5, 5, 5]),
    6: ([6, 6], [6, 6, 6, 6, 7, 8, 9]),
    8: ([7, 6], [8, 6, 7, 8, 9, 10, 10]),
    10: ([9, 8], [7, 8, 9, 10, 10, 10, 10]),
}


def test_sorting_adjacent_and_render_frames(ann_file):
    dataset = NuScenesDatasetOccpancy(ann_file, occ3d_geometry(), flow_root='flowdir')
    assert len(dataset) == 11
    tokens = [dataset.get_data_info(i)['sample_idx'] for i in range(len(dataset))]
    assert tokens == [f'{scene}-{f}' for scene, n in SCENE_LENGTHS for f in range(n)]
    for index, (adjacent, render) in EXPECTED.items():
        item = dataset.get_data_info(index)
        assert item['adjacent_indices'] == adjacent, index
        assert item['render_frame_indices'] == render, index
        assert [a['token'] for a in item['adjacent']] == [tokens[i] for i in adjacent]
        assert [r['lidar_idx'] for r in item['render_frames']] == [
            f'lidar-{tokens[i]}' for i in render]
        assert all(set(r) == set(RENDER_FRAME_KEYS) for r in item['render_frames'])
        assert item['curr']['token'] == tokens[index] and 'sample_idx' not in item['curr']
    item = dataset.get_data_info(8)
    assert item['timestamp'] == pytest.approx(1_500_000_000 + 200 + 1.0)
    assert item['scene_name'] == 'scene-c' and item['scene_token'] == 'tok-scene-c'
    assert item['pts_filename'] == 'data/nuscenes/samples/LIDAR_TOP/scene-c-2.pcd.bin'
    assert item['panoptic_filename'].endswith('lidar-scene-c-2_panoptic.npz')
    assert item['occ_path'] == 'data/gts/scene-c/scene-c-2'
    assert item['flow_path'] == 'flowdir/scene-c/scene-c-2.npz'
    assert dataset.get_data_info(-1)['sample_idx'] == 'scene-c-4'


def test_custom_frames_path_prefix_pipeline_and_registry(ann_file):
    geometry = dict(OCC3D_GEOMETRY, adjacent_frames=[1], render_frame_ids=[-1, 0, 1])
    dataset = DATASETS.build(dict(
        type='NuScenesDatasetOccpancy', ann_file=ann_file, geometry=geometry, path_prefix='/root',
        test_mode=True,
        pipeline=[lambda results: dict(results, seen=True)]))
    item = dataset[4]
    assert item['seen'] and item['adjacent_indices'] == [4]
    assert item['render_frame_indices'] == [4, 4, 5]
    assert item['pts_filename'] == '/root/data/nuscenes/samples/LIDAR_TOP/scene-b-0.pcd.bin'
    assert item['occ_path'] == '/root/data/gts/scene-b/scene-b-0'
    assert item['curr']['cams']['CAM_FRONT']['data_path'].startswith('/root/data/nuscenes/')
    assert item['render_frames'][2]['panoptic_path'].startswith('/root/data/nuscenes/panoptic')


def test_missing_corrupt_or_incomplete_ann_file(tmp_path):
    missing = tmp_path / 'nope.pkl'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        NuScenesDatasetOccpancy(str(missing), occ3d_geometry())
    corrupt = tmp_path / 'corrupt.pkl'
    corrupt.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match=str(corrupt)):
        NuScenesDatasetOccpancy(str(corrupt), occ3d_geometry())
    wrong = tmp_path / 'wrong.pkl'
    wrong.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="'infos' list"):
        NuScenesDatasetOccpancy(str(wrong), occ3d_geometry())
    infos = _infos()
    del infos[3]['occ_path']
    incomplete = tmp_path / 'incomplete.pkl'
    dump_infos(str(incomplete), infos, 'v1.0-mini')
    with pytest.raises(KeyError, match=rf"{incomplete}.*{infos[3]['token']}.*'occ_path'"):
        NuScenesDatasetOccpancy(str(incomplete), occ3d_geometry())
