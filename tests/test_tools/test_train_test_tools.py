"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on the toy fixture (CPU)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / 'tests' / 'fixtures'
TOY_CFG = str(FIXTURES / 'configs' / 'toy_occ_2e.py')

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **env) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1', **env)
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _independent_miou(ckpt: Path, tau_index: int) -> float:
    """mIoU of the toy val split recomputed with plain numpy from the checkpoint's weights."""
    from mmdet3d.testing import toy_occ

    model = toy_occ.ToyOccModel(eval_thresholds=(0.5, 0.3))
    model.load_state_dict(torch.load(ckpt, weights_only=True)['state_dict'])
    model.eval()
    dataset = toy_occ.ToyOccDataset(num_samples=4, seed=1, test_mode=True)
    hist = np.zeros((18, 18), np.int64)
    for i in range(len(dataset)):
        item = dataset[i]
        with torch.no_grad():
            pred = model([item['inputs']], [item['data_samples']], mode='predict')[0].pred_occ
        gt = item['data_samples'].gt_occ['semantics'].reshape(-1).astype(np.int64)
        p = pred[tau_index].numpy().reshape(-1).astype(np.int64)
        np.add.at(hist, (gt, p), 1)
    ious = [hist[c, c] / (hist[c].sum() + hist[:, c].sum() - hist[c, c]) for c in range(17)
            if hist[c].sum() + hist[:, c].sum() > 0]
    return round(float(np.mean(ious)) * 100, 2)


def test_train_resume_and_test(tmp_path):
    work = tmp_path / 'run'
    proc = _run([sys.executable, 'tools/train.py', TOY_CFG, '--work-dir', str(work)])
    files = {p.name for p in work.iterdir()}
    assert {'toy_occ_2e.py', 'epoch_1.pth', 'epoch_2.pth', 'epoch_1_ema.pth', 'epoch_2_ema.pth',
            'last_checkpoint'} <= files
    assert (work / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')
    (log_dir, ) = [p for p in work.iterdir() if p.is_dir()]
    log = (log_dir / f'{log_dir.name}.log').read_text()
    assert re.search(r'Epoch\(train\) \[1\]\[1/4\].*eta: ', log)
    scalars = [json.loads(line) for line in (log_dir / 'vis_data' / 'scalars.json').open()]
    assert any('loss' in s and 'lr' in s for s in scalars)
    assert any('top_mIoU' in s for s in scalars)  # validation at epoch 2
    ema = torch.load(work / 'epoch_2_ema.pth', weights_only=True)
    assert ema['epoch'] == 2 and ema['updates'] == 10560 + 8
    assert 'with_prev = True from epoch 1' in proc.stdout + proc.stderr

    resumed = tmp_path / 'resumed'
    _run([sys.executable, 'tools/train.py', TOY_CFG, '--work-dir', str(resumed),
          '--resume-from', str(work / 'epoch_1.pth')])
    full = torch.load(work / 'epoch_2.pth', weights_only=False)['state_dict']
    again = torch.load(resumed / 'epoch_2.pth', weights_only=False)['state_dict']
    for key in full:  # same data order and state: the live weights are reproduced
        torch.testing.assert_close(again[key], full[key], msg=key)
    # the original restarts the EMA on resume (quirk 10.1.18): 4 updates since epoch 1
    assert torch.load(resumed / 'epoch_2_ema.pth', weights_only=True)['updates'] == 10564

    out = tmp_path / 'preds'
    proc = _run([sys.executable, 'tools/test.py', TOY_CFG, str(work / 'epoch_2_ema.pth'),
                 '--eval', 'mIoU', '--out', str(out), '--work-dir', str(tmp_path / 'test')])
    text = proc.stdout + proc.stderr
    assert '===> per class IoU of 4 samples:' in text and '===> car - IoU = nan' in text
    printed = float(re.search(r'mIoU_0\.5: ([0-9.]+)', text).group(1))
    assert printed == _independent_miou(work / 'epoch_2_ema.pth', 0)
    assert re.search(r'top_mIoU: [0-9.]+', text)
    saved = sorted(out.rglob('*.npz'))
    assert [p.relative_to(out).as_posix() for p in saved] == [
        f'scene-0000/tok00{i}.npz' for i in range(4)]
    with np.load(saved[0]) as f:
        assert f['semantics'].shape == (4, 4, 2) and f['semantics'].dtype == np.uint8


def test_dist_train_two_gloo_processes(tmp_path):
    work = tmp_path / 'dist'
    proc = _run(['bash', 'tools/dist_train.sh', TOY_CFG, '2', '--work-dir', str(work)],
                PORT=str(_free_port()))
    text = proc.stdout + proc.stderr
    assert 'Distributed training: True' in text and 'GPU number: 2' in text
    (log_dir, ) = [p for p in work.iterdir() if p.is_dir()]
    log = (log_dir / f'{log_dir.name}.log').read_text()
    assert 'Epoch(train) [2][2/2]' in log  # 8 samples / (2 ranks x batch 2) per epoch
    assert torch.load(work / 'epoch_2_ema.pth', weights_only=True)['updates'] == 10560 + 4
    assert (work / 'epoch_2.pth').exists()

    # dist_test.sh with 2 processes evaluates the same checkpoint to the same numbers
    ckpt = str(work / 'epoch_2_ema.pth')
    single = _run([sys.executable, 'tools/test.py', TOY_CFG, ckpt, '--eval', 'mIoU',
                   '--work-dir', str(tmp_path / 'test_single')])
    dist = _run(['bash', 'tools/dist_test.sh', TOY_CFG, ckpt, '2', '--eval', 'mIoU',
                 '--work-dir', str(tmp_path / 'test_dist')], PORT=str(_free_port()))

    def scores(proc):
        text = proc.stdout + proc.stderr
        return (re.findall(r'===> per class IoU of (\d+) samples', text),
                re.findall(r'(mIoU_[0-9.]+|top_mIoU): ([0-9.]+)', text)[-3:])

    assert scores(dist) == scores(single)
    assert scores(single)[0] == ['4', '4']  # all 4 val samples, once per threshold
