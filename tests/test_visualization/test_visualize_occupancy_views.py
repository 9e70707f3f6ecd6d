"""tools/visualize_occupancy.py: the cameras, 3d and html views, the scene video, bad input."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from mmdet3d.formats.info_pkl import dump_infos
from mmdet3d.structures.occ3d import FREE_LABEL
from mmdet3d.visualization.scene_video import write_video

from tools import visualize_occupancy

SHAPE = (20, 20, 8)  # 4 m x 4 m x 0.8 m voxels over the Occ3D range
CAR, TRUCK, ROAD = 4, 10, 11


@pytest.fixture
def world(tmp_path, info_factory) -> tuple[Path, Path]:
    """Infos of scene-a (3 samples, stored out of time order) and scene-b (1), GT, predictions.

    Returns:
        the info pkl and the prediction folder.
    """
    gt = np.full(SHAPE, FREE_LABEL, np.uint8)
    gt[..., 1] = ROAD
    gt[12:14, 9:11, 2:5] = CAR  # ahead of the ego vehicle
    pred = gt.copy()
    pred[pred == CAR] = TRUCK
    mask = np.ones(SHAPE, np.uint8)
    infos = [info_factory('a2', 'scene-a', 2), info_factory('a0', 'scene-a', 0),
             info_factory('a1', 'scene-a', 1), info_factory('b0', 'scene-b', 3)]
    for info in infos:
        occ = Path(info['occ_path'])
        occ.mkdir(parents=True)
        np.savez_compressed(occ / 'labels.npz', semantics=gt, mask_camera=mask,
                            mask_lidar=mask)
        folder = tmp_path / 'pred' / info['scene_name']
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / f'{info["token"]}.npz', semantics=pred)
    dump_infos(str(tmp_path / 'infos.pkl'), infos, 'v1.0-mini')
    return tmp_path / 'infos.pkl', tmp_path / 'pred'


def test_views_of_chosen_tokens(world, tmp_path, capsys):
    info, pred = world
    out = tmp_path / 'out'
    paths = visualize_occupancy.main(['--pred-dir', str(pred), '--info', str(info), '--out',
                                      str(out), '--view', 'cameras', '3d', 'html', '--token',
                                      'b0', 'a1', '--panel-width', '64'])
    stem_b, stem_a = out / 'scene-b' / 'b0', out / 'scene-a' / 'a1'
    assert paths == [f'{stem_b}_cameras.png', f'{stem_b}_3d.png', f'{stem_b}.html',
                     f'{stem_a}_cameras.png', f'{stem_a}_3d.png', f'{stem_a}.html']
    assert capsys.readouterr().out.split() == paths
    cameras = np.asarray(Image.open(paths[0]))
    assert cameras.shape[1] >= 3 * 64 and cameras.shape[0] > 3 * 2 * 36  # 3 blocks of 2x3
    assert Image.open(paths[1]).size[0] == 3 * 640 + 2 * 4  # GT | prediction | disagreement
    assert 'Plotly.newPlot' in Path(paths[2]).read_text(encoding='utf-8')[-200000:]


def test_scene_video(world, tmp_path):
    info, pred = world
    video = tmp_path / 'videos' / 'scene-a.gif'
    paths = visualize_occupancy.main(['--pred-dir', str(pred), '--info', str(info), '--scene',
                                      'scene-a', '--video', str(video), '--fps', '4',
                                      '--size', '320x240'])
    assert paths == [str(video)]
    frames = iio.imread(video, index=None)
    assert frames.shape[:3] == (3, 240, 320)  # the scene's 3 samples
    assert iio.immeta(video, index=0)['duration'] == 250  # ms per frame at 4 fps
    assert sorted(p.name for p in video.parent.iterdir()) == ['scene-a.gif']  # no temporary


def test_bad_input_is_named(world, tmp_path):
    info, pred = world
    base = ['--pred-dir', str(pred), '--info', str(info), '--out', str(tmp_path / 'o')]
    with pytest.raises(KeyError, match="token\\(s\\) \\['nope'\\]"):
        visualize_occupancy.main(base + ['--token', 'nope'])
    with pytest.raises(KeyError, match="scene 'scene-z'.*'scene-a', 'scene-b'"):
        visualize_occupancy.main(base + ['--scene', 'scene-z'])
    with pytest.raises(SystemExit):  # --video needs --scene
        visualize_occupancy.main(['--pred-dir', str(pred), '--info', str(info), '--video',
                                  str(tmp_path / 'v.gif')])
    with pytest.raises(SystemExit):  # the cameras view needs --info
        visualize_occupancy.main(['--pred-dir', str(pred), '--gt-root', str(tmp_path),
                                  '--out', str(tmp_path / 'o'), '--view', 'cameras'])
    with pytest.raises(SystemExit):
        visualize_occupancy.parse_args(['--pred-dir', 'p', '--video', 'v.gif', '--size', '9x'])
    with pytest.raises(ValueError, match='extension must be one of'):
        write_video(str(tmp_path / 'v.avi'), [np.zeros((20, 20, 3), np.uint8)])
    Path(str(pred / 'scene-a' / 'a0.npz')).unlink()
    np.savez(pred / 'scene-a' / 'a0.npz', semantics=np.zeros((20, 20, 4), np.uint8))
    with pytest.raises(Exception, match='a0'):  # GT and prediction shapes differ
        visualize_occupancy.main(base + ['--view', '3d', '--token', 'a0'])


def test_mp4_video(tmp_path):
    pytest.importorskip('imageio_ffmpeg', reason='MP4 needs the optional imageio-ffmpeg')
    frames = [np.full((50, 70, 3), 40 * k, np.uint8) for k in range(3)]
    path = write_video(str(tmp_path / 'v.mp4'), frames, fps=5)
    assert iio.imread(path, index=None).shape[:3] == (3, 50, 70)
