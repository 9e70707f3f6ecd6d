"""End to end on a small demo world: the tiny CPU OccFlowNet beats the non-learned prior.

The honest comparison of ``tools/quickstart.sh`` at a smaller scale: a 6-scene world (4 train
scenes, 2 val scenes, 4 samples each) is generated into a temporary folder, converted (infos +
flow), the tiny config is trained through ``tools/train.py`` and its EMA checkpoint evaluated
through ``tools/test.py`` (Occ3D mIoU, camera mask, 200x200x16 grid), each in a subprocess; the
prior (per-voxel most frequent train label) is evaluated on the same val split with the same
metric.

To fit the suite's budget on 2 cores the model is smaller than the quickstart's: 64x192 input
images and a 40x40x16 model grid (2 m x 2 m x 0.4 m cells; its predictions are nearest-upsampled
x5 to the Occ3D grid where both are scored, so the coarse grid only handicaps the model) with the
density scale that gives its cells the optical depth of the quickstart's (2 instead of 5), trained
with batch 1 for 672 iterations.

Deterministic: every subprocess runs with one thread (``OMP_NUM_THREADS=1``), a fixed hash seed,
``--seed 0 --deterministic`` (weights, data order, augmentation and ray sampling all come from
that seed) and no dataloader workers, so on one machine the test gives the same figure on every
run, whatever the load; ATen, oneDNN and MKL are pinned to their AVX2 kernels so that x86-64
machines with and without AVX-512 run the same arithmetic (two runs side by side on the 2-core
development machine, an AMD EPYC, gave bit-identical EMA checkpoints).

Measured with this deterministic set-up (docs/training_diagnostics.md): the tiny config with
augmentation and without the density prior gave 5.39 vs the prior's 10.11 (then a strict
xfail); without augmentation 11.04; without augmentation and with the density sparsity prior
13.15 (seed 0, the seed this test uses), 12.82 (seed 1) and 10.44 (seed 2); with the render
class weights of the demo world as well 13.25 (seed 0) and 14.40 (seed 1); with the L1 render
depth loss as well 17.39 (seed 0; 16.65 after the model's voxel layout was unified, another
arithmetic order); with the semantic loss at the LiDAR returns as well (the tiny config now)
17.10 / 19.43 / 17.28 (seeds 0 / 1 / 2); with the density scale 2 of the 2 m cells as well (this
test now) **20.44** / 18.02 / 18.11 (seed 0 is this test's): every seed beats the prior by 7.9 or
more, beyond 3x the seed-to-seed spread (3 x 2.42 = 7.26), the learning issue's bar.
Seed 0 re-measured on 2026-12-08: 17.03 at 2c85069 (after later arithmetic-order changes) and
13.99 at 1505518, whose voxel neck projects before upsampling (equal up to float rounding): a
3-point move from summation order alone, more than the seed spread above; the margin over the
prior is 3.9 (seeds 1-2 at the current code are next, docs/training_diagnostics.md).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmdet3d.analysis.prior_baseline import prior_miou

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'configs/occflownet/occflownet_tiny_2d_flow_cpu.py'
EPOCHS = 42  # 16 train samples, batch 1: 672 iterations
INPUT_SIZE = '(64,192)'
# 2 m x 2 m x 0.4 m cells; sigma = 2 x the sigmoid density, the tiny config's optical depth per
# cell (5/m x 0.8 m = 2/m x 2 m = 4): at 5/m a 2 m cell that a ray enters stops it within
# decimetres, so a cell holding part of an object must turn transparent for the rays that pass
# through its free part (docs/training_diagnostics.md).
GRID = ['geometry.model_grid_shape=[40,40,16]', 'model.renderer.density_scale=2.0']


# One thread, a fixed hash seed, and the CPU kernels of ATen, oneDNN and MKL pinned to AVX2, so
# that any x86-64 machine with AVX2 (with or without AVX-512) runs the same arithmetic.
DETERMINISTIC_ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0',
                         ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2', MKL_CBWR='AVX2')


def run(args: list[str], env: dict[str, str]) -> str:
    """Run a repository tool; on failure show its output."""
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode == 0, f'{args[0]} failed:\n{result.stdout[-5000:]}'
    return result.stdout


def train_and_evaluate(tmp_path: Path, config: str = CONFIG, seed: int = 0) -> tuple[float, float]:
    """Generate the small world under ``tmp_path``, train ``config`` on it and return the val
    mIoU of its EMA checkpoint and of the prior (also used by docs/training_diagnostics.md's
    seed runs: ``python -c 'import test_learnability as t; print(t.train_and_evaluate(...))'``).
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1', **DETERMINISTIC_ENV)
    root = tmp_path / 'demo'
    run(['tools/create_demo_data.py', '--out', str(root), '--scenes', '6',
         '--samples-per-scene', '4', '--sweeps-per-sample', '1', '--image-size', '400x225',
         '--no-progress'], env)
    run(['tools/create_data_bevdet.py', '--root-path', str(root), '--version', 'v1.0-mini',
         '--out-dir', str(root)], env)
    run(['tools/create_flow_data.py', '--info-dir', str(root), '--version', 'v1.0-mini',
         '--out-dir', str(root / 'flow'), '--workers', '0'], env)
    train_ann = str(root / 'bevdetv2-nuscenes-mini_infos_train.pkl')
    val_ann = str(root / 'bevdetv2-nuscenes-mini_infos_val.pkl')
    flow = str(root / 'flow')
    options = [
        f'train_dataloader.dataset.ann_file={train_ann}',
        f'train_dataloader.dataset.flow_root={flow}',
        f'val_dataloader.dataset.ann_file={val_ann}',
        f'val_dataloader.dataset.flow_root={flow}',
        f'test_dataloader.dataset.ann_file={val_ann}',
        f'test_dataloader.dataset.flow_root={flow}',
        f'model.img_view_transformer.input_size={INPUT_SIZE}',
        f'train_dataloader.dataset.pipeline.0.data_config.input_size={INPUT_SIZE}',
        f'val_dataloader.dataset.pipeline.0.data_config.input_size={INPUT_SIZE}',
        f'test_dataloader.dataset.pipeline.0.data_config.input_size={INPUT_SIZE}', *GRID,
        'train_dataloader.batch_size=1',
        f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
        f'param_scheduler.1.T_max={EPOCHS}', f'param_scheduler.1.end={EPOCHS}',
        f'default_hooks.checkpoint.interval={EPOCHS}', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
    ]
    work_dir = tmp_path / 'work'
    run(['tools/train.py', config, '--work-dir', str(work_dir), '--seed', str(seed),
         '--deterministic', '--cfg-options', *options], env)
    checkpoint = work_dir / f'epoch_{EPOCHS}_ema.pth'
    assert checkpoint.is_file()
    log = run(['tools/test.py', config, str(checkpoint), '--eval', 'mIoU', '--work-dir',
               str(work_dir), '--cfg-options', *options], env)
    found = re.findall(r'top_mIoU: ([0-9.]+)', log)
    assert found, f'no top_mIoU in the test output:\n{log[-3000:]}'
    baseline = prior_miou(train_ann, val_ann)
    assert 0.0 < baseline < 100.0
    return float(found[-1]), baseline


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tiny_model_beats_the_prior(tmp_path):
    model_miou, baseline = train_and_evaluate(tmp_path)
    print(f'model mIoU {model_miou:.2f} vs prior mIoU {baseline:.2f}')
    assert model_miou > baseline, f'model mIoU {model_miou} <= prior mIoU {baseline}'
