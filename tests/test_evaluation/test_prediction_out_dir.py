"""``tools/test.py --out DIR`` never deletes nor mixes data (issue 29): a non-empty ``DIR`` or
``DIR.partial`` is refused before anything is built unless ``--overwrite``; ``OccMetric``
stages into a folder it creates itself and renames it to ``DIR``; a failed run leaves ``DIR``
untouched."""
from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.engine.runner_setup import apply_test_args, load_config
from mmdet3d.evaluation.metrics import occ_metric
from mmdet3d.evaluation.metrics.occ_metric import OccMetric
from mmdet3d.formats.occ3d_labels import OccGTError
from mmdet3d.formats.occ_predictions import check_prediction_dir
from mmdet3d.structures import OccDataSample
from mmdet3d.utils.file_io import current_umask

REPO = Path(__file__).resolve().parents[2]
TOY_CFG = str(REPO / 'tests' / 'fixtures' / 'configs' / 'toy_occ_2e.py')
SHAPE = (4, 3, 2)


def write_gt(folder: Path, damaged: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ones = np.ones(SHAPE, np.uint8)
    np.savez_compressed(folder / 'labels.npz', semantics=ones * 4, mask_lidar=ones,
                        mask_camera=ones)
    if damaged:
        (folder / 'labels.npz').write_bytes(b'not a zip')
    return folder


def predicted(token: str, occ_path: Path, scene: str = 'scene-1') -> dict:
    sample = OccDataSample(metainfo=dict(sample_idx=token, scene_name=scene,
                                         occ_path=str(occ_path), eval_thresholds=[0.35]))
    sample.pred_occ = torch.full((1, *SHAPE), 4, dtype=torch.uint8)
    return sample.to_dict()


def files_below(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file())


def user_out_dir(tmp_path: Path) -> Path:
    """A user's DIR with two files of an earlier run."""
    out = tmp_path / 'pred'
    (out / 'scene-9').mkdir(parents=True)
    (out / 'scene-9' / 'old.npz').write_bytes(b'old prediction')
    (out / 'notes.txt').write_text('mine')
    return out


def cli_args(tmp_path: Path, out: Path, **kwargs) -> argparse.Namespace:
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    return argparse.Namespace(**{**dict(config=TOY_CFG, checkpoint=str(ckpt), eval=None,
                                        out=str(out), work_dir=None, launcher='none'),
                                 **kwargs})


@pytest.fixture
def logged(monkeypatch) -> list[str]:
    """Messages of ``print_log`` from apply_test_args and OccMetric."""
    messages: list[str] = []
    record = lambda msg, *args, **kwargs: messages.append(msg)  # noqa: E731
    monkeypatch.setattr('mmengine.logging.print_log', record)
    monkeypatch.setattr(occ_metric, 'print_log', record)
    return messages


def test_a_non_empty_out_is_refused_before_anything_is_built(tmp_path):
    out = user_out_dir(tmp_path)
    args = cli_args(tmp_path, out, eval=['mIoU'])
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(FileExistsError, match=rf'--out {out} already exists and holds 2 files;.*'
                       'pass --overwrite to replace it'):
        apply_test_args(load_config(TOY_CFG), args)
    with pytest.raises(FileExistsError, match=f'{out} already exists'):
        OccMetric(save_dir=str(out))  # a config's save_dir is refused as well
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']
    assert sorted(os.listdir(tmp_path)) == before  # no staging folder was created


def test_a_users_partial_folder_is_refused_and_never_touched(tmp_path, logged):
    out = tmp_path / 'pred'
    partial = tmp_path / 'pred.partial'
    partial.mkdir()
    (partial / 'mine.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match=rf'{partial} exists and is not empty .*never '
                       'deletes it.*--overwrite'):
        apply_test_args(load_config(TOY_CFG), cli_args(tmp_path, out))
    assert (partial / 'mine.txt').read_text() == 'keep me'
    # --overwrite proceeds, leaves pred.partial as it is, and writes pred
    cfg = apply_test_args(load_config(TOY_CFG), cli_args(tmp_path, out, overwrite=True))
    assert cfg.test_evaluator['overwrite'] and cfg.test_evaluator['save_dir'] == str(out)
    assert any(f'{partial} is left as it is' in m for m in logged)
    metric = OccMetric(save_dir=str(out), overwrite=True, format_only=True)
    metric.process({}, [predicted('a', tmp_path)])
    metric.compute_metrics(metric.results)
    assert files_below(out) == ['scene-1/a.npz']
    assert files_below(partial) == ['mine.txt']


def test_an_empty_or_missing_out_is_accepted_and_a_file_is_not(tmp_path):
    assert check_prediction_dir(str(tmp_path / 'missing')) == 0
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty.partial').mkdir()
    assert check_prediction_dir(str(tmp_path / 'empty')) == 0
    (tmp_path / 'file').write_text('x')
    for overwrite in (False, True):
        with pytest.raises(NotADirectoryError, match='--out .*file exists and is not a folder'):
            check_prediction_dir(str(tmp_path / 'file'), overwrite)
    args = cli_args(tmp_path, tmp_path / 'empty')
    assert 'overwrite' not in apply_test_args(load_config(TOY_CFG), args).test_evaluator


def test_overwrite_replaces_out_as_a_whole_and_says_so(tmp_path, logged):
    out = user_out_dir(tmp_path)
    apply_test_args(load_config(TOY_CFG), cli_args(tmp_path, out, overwrite=True))
    assert any(f'--overwrite: {out} holds 2 files; they are replaced as a whole' in m
               for m in logged)
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']  # nothing replaced yet

    gts = tmp_path / 'gts'
    metric = OccMetric(save_dir=str(out), overwrite=True)
    staging = Path(metric.staging_dir)
    assert staging.parent == tmp_path and staging.name.startswith('pred.partial-')
    metric.process({}, [predicted('a', write_gt(gts / 'a')),
                        predicted('b', write_gt(gts / 'b'), scene='scene-2')])
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']  # still, until published
    assert metric.compute_metrics(metric.results)['top_mIoU'] == 100.0
    assert files_below(out) == ['scene-1/a.npz', 'scene-2/b.npz']  # exactly the new ones
    assert any(f'2 predictions written to {out} (replaced the previous {out}: 2 files)' in m
               for m in logged)
    assert sorted(os.listdir(tmp_path)) == ['c.pth', 'gts', 'pred']  # no staging, no old copy
    assert (out.stat().st_mode & 0o777) == 0o777 & ~current_umask()


def test_a_failure_mid_run_leaves_out_untouched(tmp_path, capsys):
    out = user_out_dir(tmp_path)
    gts = tmp_path / 'gts'
    metric = OccMetric(save_dir=str(out), overwrite=True)
    staging = Path(metric.staging_dir)
    with pytest.raises(OccGTError, match=r'\(sample b\)'):
        metric.process({}, [predicted('a', write_gt(gts / 'a')),
                            predicted('b', write_gt(gts / 'b', damaged=True))])
    del metric
    gc.collect()
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']
    assert files_below(staging) == ['scene-1/a.npz', 'scene-1/b.npz']  # left, and named
    assert (f'{out} is untouched and the 2 files predicted so far are left in {staging}'
            in capsys.readouterr().err)


def test_a_prediction_missing_from_staging_fails_before_out_is_touched(tmp_path):
    """E.g. ranks that do not share the staging folder's filesystem."""
    out = user_out_dir(tmp_path)
    metric = OccMetric(save_dir=str(out), overwrite=True, format_only=True)
    metric.process({}, [predicted('a', tmp_path)])
    results = metric.results + [dict(thresholds=(0.35, ), hists=None, saved='scene-1/x.npz')]
    with pytest.raises(FileNotFoundError, match=r'1 of 2 predictions are not in the staging '
                       r'folder .*scene-1/x.npz.*is untouched'):
        metric.compute_metrics(results)
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']


def test_out_filled_during_the_run_is_not_replaced_without_overwrite(tmp_path):
    out = tmp_path / 'pred'
    metric = OccMetric(save_dir=str(out), format_only=True)
    metric.process({}, [predicted('a', tmp_path)])
    out.mkdir()
    (out / 'late.txt').write_text('written meanwhile')
    with pytest.raises(FileExistsError, match=f'{out} received 1 files during the run'):
        metric.compute_metrics(metric.results)
    assert files_below(out) == ['late.txt']
    assert files_below(Path(metric.staging_dir)) == ['scene-1/a.npz']


def test_a_failed_swap_puts_the_old_out_back(tmp_path, monkeypatch):
    out = user_out_dir(tmp_path)
    metric = OccMetric(save_dir=str(out), overwrite=True, format_only=True)
    metric.process({}, [predicted('a', tmp_path)])
    real_rename = os.rename

    def rename(src, dst):
        if str(src) == metric.staging_dir:
            raise OSError('disk trouble')
        real_rename(src, dst)

    monkeypatch.setattr(occ_metric.os, 'rename', rename)
    with pytest.raises(OSError, match='disk trouble'):
        metric.compute_metrics(metric.results)
    assert files_below(out) == ['notes.txt', 'scene-9/old.npz']
    assert sorted(os.listdir(tmp_path)) == ['pred', Path(metric.staging_dir).name]


def test_each_evaluation_stages_anew_and_replaces_its_own_predictions(tmp_path):
    out = tmp_path / 'pred'
    metric = OccMetric(save_dir=str(out), format_only=True)
    first = metric.staging_dir
    metric.process({}, [predicted('a', tmp_path), predicted('b', tmp_path)])
    metric.evaluate(2)
    assert files_below(out) == ['scene-1/a.npz', 'scene-1/b.npz']
    assert metric.staging_dir != first and os.listdir(metric.staging_dir) == []
    metric.process({}, [predicted('c', tmp_path)])  # e.g. the next validation
    metric.evaluate(1)
    assert files_below(out) == ['scene-1/c.npz']
    staging = metric.staging_dir
    del metric
    gc.collect()
    assert not os.path.exists(staging)  # an empty staging folder is removed at the end
    assert os.listdir(tmp_path) == ['pred']


def _two_ranks(rank: int, init_file: str, out: str, queue) -> None:
    """One rank of a gloo pair: every rank must stage into the folder rank 0 created."""
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        metric = OccMetric(save_dir=out, format_only=True)
        metric.process({}, [predicted(f'tok{rank}', Path(out))])
        metric.evaluate(2)
        queue.put((rank, metric.staging_dir is not None))
    finally:
        dist.destroy_process_group()


def test_two_ranks_write_into_one_staging_folder(tmp_path):
    import torch.multiprocessing as mp
    out = tmp_path / 'pred'
    context = mp.get_context('spawn')
    queue = context.SimpleQueue()
    mp.start_processes(_two_ranks, args=(str(tmp_path / 'init'), str(out), queue), nprocs=2,
                       start_method='spawn')
    assert sorted(queue.get() for _ in range(2)) == [(0, True), (1, True)]
    assert files_below(out) == ['scene-1/tok0.npz', 'scene-1/tok1.npz']
    assert sorted(os.listdir(tmp_path)) == ['init', 'pred'] or sorted(
        os.listdir(tmp_path)) == ['pred']


def test_the_tools_take_overwrite(monkeypatch):
    from tools import test as test_tool
    monkeypatch.setattr(sys, 'argv', ['test.py', 'cfg.py', 'c.pth', '--out', 'd', '--overwrite'])
    args = test_tool.parse_args()
    assert args.overwrite and args.out == 'd'
    assert '"${@:4}"' in (REPO / 'tools' / 'dist_test.sh').read_text()  # passed through
