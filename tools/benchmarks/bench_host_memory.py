"""Training iterations on the CPU with and without ``keep_freed_host_memory``, side by side.

Each arm is a fresh subprocess that builds the config's model and its first training batch
(``data/demo`` by default: run ``tools/quickstart.sh`` or ``tools/create_demo_data.py`` first),
runs ``--warmup`` iterations and then ``--iters`` timed ones (forward, backward, AdamW step), and
reports per timed iteration the median forward + backward time, minor page faults and system
time (``getrusage``), and the peak resident set of the process. The two arms alternate
``--rounds`` times so that a load change on the machine hits both; the ratio is of the medians.

Usage:
    python tools/benchmarks/bench_host_memory.py [--config CFG] [--threads 1] [--iters 3]
        [--rounds 2] [--cfg-options k=v ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / 'configs' / 'occflownet' / 'occflownet_tiny_2d_flow_cpu.py'


def run_arm(config: str, keep: bool, warmup: int, iters: int, options: list[str]) -> dict:
    """One arm in this process: figures of the timed iterations."""
    from mmdet3d.utils.host_memory import keep_freed_host_memory
    applied = keep_freed_host_memory() if keep else False
    import torch
    from mmengine.config import DictAction
    from mmengine.dataset import pseudo_collate

    from mmdet3d.engine.runner_setup import load_config
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules()
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    cfg = load_config(config, parser.parse_args(['--cfg-options', *options] if options else [])
                      .cfg_options)
    torch.manual_seed(0)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(cfg.train_dataloader.batch_size)])
    model = MODELS.build(cfg.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    seconds, faults, system = [], [], []
    for i in range(warmup + iters):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        optimizer.zero_grad()
        sum(v for v in losses.values() if torch.is_tensor(v)).backward()
        elapsed = time.perf_counter() - start
        optimizer.step()
        after = resource.getrusage(resource.RUSAGE_SELF)
        if i >= warmup:
            seconds.append(elapsed)
            faults.append(after.ru_minflt - before.ru_minflt)
            system.append(after.ru_stime - before.ru_stime)
    return dict(applied=applied, seconds=statistics.median(seconds),
                faults=statistics.median(faults), system=statistics.median(system),
                peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', default=[])
    parser.add_argument('--arm', choices=['keep', 'default'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.config, args.arm == 'keep', args.warmup, args.iters,
                                 args.cfg_options)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')]))
    results: dict[str, list[dict]] = {'default': [], 'keep': []}
    for _ in range(args.rounds):
        for arm in results:
            out = subprocess.run(
                [sys.executable, __file__, '--arm', arm, '--config', args.config,
                 '--warmup', str(args.warmup), '--iters', str(args.iters),
                 *(['--cfg-options', *args.cfg_options] if args.cfg_options else [])],
                env=env, cwd=REPO_ROOT, text=True, capture_output=True, check=True)
            results[arm].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f'{Path(args.config).name}, {args.threads} thread(s), median of {args.iters} '
          f'iterations after {args.warmup} warm-up, {args.rounds} rounds')
    print(f'{"arm":>8} {"s/it":>6} {"faults/it":>10} {"sys s/it":>9} {"peak MiB":>9}')
    medians = {}
    for arm, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs)
               for k in ('seconds', 'faults', 'system', 'peak_mib')}
        medians[arm] = med
        print(f'{arm:>8} {med["seconds"]:6.2f} {med["faults"]:10.0f} {med["system"]:9.2f} '
              f'{med["peak_mib"]:9.0f}')
    ratio = medians['default']['seconds'] / medians['keep']['seconds']
    print(f'speed-up keep vs default: {ratio:.2f}x; '
          f'applied: {all(r["applied"] for r in results["keep"])}')


if __name__ == '__main__':
    main()
