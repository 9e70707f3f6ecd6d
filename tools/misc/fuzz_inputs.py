"""Fuzz the loaders of files from elsewhere: info pkls, checkpoints, Occ3D labels (issue 29).

    python tools/misc/fuzz_inputs.py --runs N [--kinds info ckpt labels] [--seed S]
        [--workers W] [--mem-mib M] [--timeout S] [--out DIR] [--start I]
        [--loader KIND=module:function ...]

Loads ``N`` deterministically mutated files per kind in worker processes with a memory cap
(address space before each file + ``--mem-mib``) and a per-file time limit, and classifies each
file: ok, named_error (an exception naming the file), unnamed_error, crash, hang, over_cap,
side_effect (see :mod:`mmdet3d.testing.input_fuzzing`). Prints a table, writes
``<out>/summary.json`` and keeps every defect's file under ``<out>/defects/<kind>/<outcome>/``
with a JSON record of the mutation that made it. Case ``I`` of a kind depends only on the seed,
so ``--start I --runs 1`` remakes and reloads it. Exit status 1 if any file gave unnamed_error,
crash, hang, over_cap or side_effect.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmdet3d.testing.input_fuzzing import DEFECTS, KINDS, format_table, fuzz  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, required=True, help='mutated files per kind')
    parser.add_argument('--kinds', nargs='+', choices=sorted(KINDS), default=list(KINDS),
                        help='file kinds to fuzz (default: all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the mutations')
    parser.add_argument('--start', type=int, default=0, help='index of the first case')
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help='worker processes')
    parser.add_argument('--mem-mib', type=int, default=512,
                        help='allocation budget per file above the worker\'s address space')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds per file')
    parser.add_argument('--out', default='work_dirs/fuzz_inputs',
                        help='folder of summary.json and the defect files')
    parser.add_argument('--loader', action='append', default=[], metavar='KIND=MODULE:FUNCTION',
                        help='load KIND with this function instead (repeatable)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loaders: dict[str, list[str]] = {}
    for item in args.loader:
        kind, sep, name = item.partition('=')
        if not sep or kind not in KINDS or ':' not in name:
            raise SystemExit(f'--loader {item!r}: expected KIND=module:function, KIND in '
                             f'{sorted(KINDS)}')
        loaders.setdefault(kind, []).append(name)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=args.runs * len(args.kinds), unit='file', dynamic_ncols=True)
    counts = dict.fromkeys(DEFECTS, 0)

    def on_result(result) -> None:
        if result.outcome in counts:
            counts[result.outcome] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: v for k, v in counts.items() if v}, refresh=False)

    try:
        summary = fuzz(args.kinds, args.runs, args.seed, args.workers, args.mem_mib, args.timeout,
                       args.out, loaders, on_result, args.start)
    finally:
        if bar is not None:
            bar.close()
    print(format_table(summary['table']))
    print(f"{len(summary['defects'])} defects in {summary['seconds']} s; summary: "
          f"{os.path.join(args.out, 'summary.json')}"
          + (f"; files: {os.path.join(args.out, 'defects')}" if summary['defects'] else ''))
    return 1 if summary['defects'] else 0


if __name__ == '__main__':
    sys.exit(main())
