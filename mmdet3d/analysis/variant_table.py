"""The paper's table in miniature: figures of one run and their mean and range over seeds.

A run is one trained checkpoint of one config variant (``_2d``, ``_2d_flow``, ``_2d_flow_3d``)
and seed, evaluated by ``tools/test.py --eval mIoU RayIoU --out DIR``. Its figures: the split's
mIoU and RayIoU (from the test's JSON), and from the saved predictions the mean IoU of the
dynamic classes present in the split's GT and of the static ones (camera mask, confusion
matrices summed over the split as in the benchmark), and the IoU of each class present.
``tools/analysis_tools/paper_table.py``
runs the grid of variants x seeds and prints :func:`format_table`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmdet3d.evaluation.functional.occ_miou import occ_confusion_matrix, per_class_iou
from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL, NUM_CLASSES
from mmdet3d.visualization.occ_samples import load_sample_volumes, pair_samples

FIGURES = ('miou', 'ray_iou', 'dynamic', 'static')
FIGURE_NAMES = dict(miou='mIoU', ray_iou='RayIoU', dynamic='dynamic classes',
                    static='static classes')


def class_group_ious(hist: np.ndarray, dynamic_classes: Sequence[int]) -> dict[str, float | None]:
    """Mean IoU (%) of the dynamic and of the static semantic classes present in the GT.

    Args:
        hist: (C, C) confusion matrix (rows GT, columns prediction) of the split.
        dynamic_classes: the dynamic class ids (the ``_2d`` configs' ``dynamic_classes``).

    Returns:
        ``dynamic`` and ``static``: the mean over the classes with GT voxels, None if none.
    """
    ious = per_class_iou(hist)
    present = hist[:FREE_LABEL].sum(axis=1) > 0
    dynamic = np.isin(np.arange(FREE_LABEL), list(dynamic_classes))
    out = {}
    for name, group in (('dynamic', dynamic), ('static', ~dynamic)):
        chosen = ious[:FREE_LABEL][group & present]
        out[name] = None if len(chosen) == 0 else round(100.0 * float(np.mean(chosen)), 2)
    return out


def present_class_ious(hist: np.ndarray) -> dict[str, float]:
    """IoU (%) of each semantic class with GT voxels, by class name.

    Args:
        hist: (C, C) confusion matrix (rows GT, columns prediction) of the split.
    """
    ious = per_class_iou(hist)
    return {CLASS_NAMES[c]: round(100.0 * float(ious[c]), 2)
            for c in range(FREE_LABEL) if hist[c].sum() > 0}


def prediction_group_ious(pred_dir: str, info_file: str, dynamic_classes: Sequence[int],
                          path_prefix: str | None = None) -> dict[str, float | None]:
    """:func:`class_group_ious` of the predictions saved by ``tools/test.py --out pred_dir``,
    and their :func:`present_class_ious` as ``per_class``."""
    hist = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    samples = pair_samples(pred_dir, info_file, None, path_prefix)
    if not samples:
        raise ValueError(f'no predictions in {pred_dir}')
    for sample in samples:
        pred, gt, mask = load_sample_volumes(sample, 'camera')
        hist += occ_confusion_matrix(gt, pred, mask)
    return dict(class_group_ious(hist, dynamic_classes), per_class=present_class_ious(hist))


def summarize_runs(runs: Sequence[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, min and max of each figure per variant.

    Args:
        runs: dicts with ``variant``, ``seed`` and the :data:`FIGURES` (None where undefined).

    Returns:
        {variant: {figure: {'mean', 'min', 'max', 'n'}}} in the order the variants first appear.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant in dict.fromkeys(run['variant'] for run in runs):
        rows = [run for run in runs if run['variant'] == variant]
        out[variant] = {}
        for figure in FIGURES:
            values = [float(run[figure]) for run in rows if run.get(figure) is not None]
            if values:
                out[variant][figure] = dict(mean=round(float(np.mean(values)), 2),
                                            min=round(min(values), 2), max=round(max(values), 2),
                                            n=len(values))
    return out


def ranking_statements(summary: dict[str, dict[str, dict[str, float]]],
                       figure: str = 'miou') -> list[str]:
    """For consecutive variants: does the step in ``figure``'s mean exceed the seed spread?

    The spread of a variant is its max - min over seeds; a step counts as beyond the spread
    when it is larger than the larger of the two variants' spreads.
    """
    names = [name for name in summary if figure in summary[name]]
    lines = []
    for first, second in zip(names, names[1:]):
        a, b = summary[first][figure], summary[second][figure]
        step = b['mean'] - a['mean']
        spread = max(a['max'] - a['min'], b['max'] - b['min'])
        verdict = 'beyond' if abs(step) > spread else 'within'
        lines.append(f'{first} -> {second}: {FIGURE_NAMES[figure]} {step:+.2f} '
                     f'({verdict} the seed spread {spread:.2f})')
    return lines


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per variant, 'mean (min-max)' per figure, and the ranking."""
    header = '| variant | runs | ' + ' | '.join(FIGURE_NAMES[f] for f in FIGURES) + ' |'
    lines = [header, '|' + '---|' * (len(FIGURES) + 2)]
    for variant, figures in summary.items():
        runs = max((v['n'] for v in figures.values()), default=0)
        cells = [f"{figures[f]['mean']:.2f} ({figures[f]['min']:.2f}-{figures[f]['max']:.2f})"
                 if f in figures else 'n/a' for f in FIGURES]
        lines.append(f'| {variant} | {runs} | ' + ' | '.join(cells) + ' |')
    lines.append('')
    for figure in FIGURES:
        lines.extend(ranking_statements(summary, figure))
    return '\n'.join(lines)
