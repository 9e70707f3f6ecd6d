"""Why does a rendering-supervised occupancy model miss free space? Split-level diagnostics.

:class:`TrainingDiagnostics` accumulates, sample by sample, what
``tools/analysis_tools/diagnose_training.py`` reports (see ``docs/training_diagnostics.md``):

- ray coverage: the share of model cells that at least one LiDAR ray of the sample (all render
  frames) passes through, and the share of scored (camera-mask) voxels in cells no ray crosses;
- the false-occupied rate of GT-free voxels and the missed rate of GT-occupied voxels by
  horizontal range, by height (z layer) and by the number of ray passes through their cell, and
  the mIoU of covered vs uncovered voxels;
- occupied-vs-free IoU, and the mIoU with the GT's free space and the model's classes
  (semantics alone);
- the mIoU for each free-space threshold tau (a sweep) and the model grid's ceiling (the GT
  pooled to the model grid by majority and upsampled back), and the mIoU of the LiDAR-returns
  volume (each model cell holding a return occupied by its returns' majority label: what the
  rendering supervision shows of the scene at most);
- per class: IoU, the grid's ceiling IoU and the returns volume's IoU, the missed rate of its
  GT voxels (predicted free) and the false-occupied rate of the voxels predicted as it (GT
  free), overall and by z layer;
- render losses and depth errors by LiDAR depth of the model's fields and of the GT volume
  rendered as a field, on the same rays;
- the depth net of the key frame by LiDAR depth: on every image patch holding a LiDAR point
  (the depth loss's targets), the share whose most probable depth bin is the target bin or
  one bin from it, and the mean probability of the target bin. A depth net that is wrong at a
  range lifts the image features of what stands there into the wrong voxels.

All confusion matrices are summed over the split before IoUs are taken, as in the benchmark.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmdet3d.evaluation.functional.occ_miou import occ_confusion_matrix, occ_miou, per_class_iou
from mmdet3d.structures.occ3d import CLASS_NAMES, FREE_LABEL, NUM_CLASSES, POINT_CLOUD_RANGE
from mmdet3d.structures.voxel_grids import grid_factors, pool_majority, upsample_nearest

from .free_space import (DEPTH_EDGES, PASS_EDGES, RANGE_EDGES, bin_labels, binned_counts,
                         free_where_gt_free, voxel_ranges)

ERROR_KINDS = {'false_occupied': 'GT-free voxels predicted occupied',
               'missed_occupied': 'GT-occupied voxels predicted free'}


def _rate(counts: np.ndarray) -> list[float | None]:
    """Percent flagged per bin of ``binned_counts`` output (None for an empty bin)."""
    return [None if total == 0 else round(100.0 * hits / total, 2) for total, hits in counts]


class TrainingDiagnostics:
    """Accumulate the diagnostics of a split, one sample at a time.

    Args:
        thresholds: free-space thresholds tau on sigma (1/m) of the sweep.
        tau: the threshold of the binned rates and the occupancy IoU (the model's own).
        pc_range: range of the Occ3D grid (metres). Defaults to nuScenes' Occ3D range.
    """

    def __init__(self, thresholds: Sequence[float], tau: float,
                 pc_range: Sequence[float] = POINT_CLOUD_RANGE) -> None:
        self.thresholds = sorted({float(t) for t in thresholds} | {float(tau)})
        self.tau = float(tau)
        self.pc_range = tuple(float(v) for v in pc_range)
        self.num_samples = 0
        shape = (NUM_CLASSES, NUM_CLASSES)
        self.hist = {t: np.zeros(shape, np.int64) for t in self.thresholds}
        self.hist_semantics_only = np.zeros(shape, np.int64)
        self.hist_ceiling = np.zeros(shape, np.int64)
        self.hist_returns = np.zeros(shape, np.int64)
        self.hist_covered = np.zeros(shape, np.int64)
        self.hist_uncovered = np.zeros(shape, np.int64)
        self.cells_total = 0
        self.cells_crossed = 0
        self.scored_total = 0
        self.scored_uncovered = 0
        self.occupancy = np.zeros(3, np.int64)  # TP, FP, FN of occupied vs free
        # per error kind ('false_occupied': GT-free called occupied, 'missed_occupied': GT
        # occupied called free) and binning: (bins, 2) counts of [selected, flagged]
        self.binned: dict[str, dict[str, np.ndarray]] = {
            kind: dict(range=np.zeros((len(RANGE_EDGES) - 1, 2), np.int64), height=None,
                       passes=np.zeros((len(PASS_EDGES) - 1, 2), np.int64))
            for kind in ERROR_KINDS}
        self.render: dict[str, dict] = {}
        # per LiDAR depth bin (DEPTH_EDGES): [patches, argmax exact, within one bin, sum of the
        # target bin's probability]
        self.depth_net = np.zeros((len(DEPTH_EDGES) - 1, 4), np.float64)
        # per class and z layer: [GT voxels, of them predicted free, predicted voxels, of
        # them GT free]; allocated at the first sample (the GT's height)
        self.per_class_height: np.ndarray | None = None

    def _add_per_class(self, gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> None:
        """Accumulate :attr:`per_class_height` from one sample's (X, Y, Z) labels."""
        depth = gt.shape[2]
        if self.per_class_height is None:
            self.per_class_height = np.zeros((4, FREE_LABEL, depth), np.int64)
        layer = np.broadcast_to(np.arange(depth), gt.shape)[mask]
        gt_m, pred_m = gt[mask].astype(np.int64), pred[mask].astype(np.int64)
        size = FREE_LABEL * depth

        def count(labels: np.ndarray, where: np.ndarray) -> np.ndarray:
            keep = where & (labels < FREE_LABEL)
            return np.bincount(labels[keep] * depth + layer[keep],
                               minlength=size).reshape(FREE_LABEL, depth)

        everywhere = np.ones(gt_m.shape, bool)
        self.per_class_height += np.stack([
            count(gt_m, everywhere), count(gt_m, pred_m == FREE_LABEL),
            count(pred_m, everywhere), count(pred_m, gt_m == FREE_LABEL)])

    def add_sample(self, gt: np.ndarray, mask: np.ndarray, sigma: np.ndarray,
                   classes: np.ndarray, passes: np.ndarray,
                   returns: np.ndarray | None = None) -> None:
        """Add one sample.

        Args:
            gt: (X, Y, Z) Occ3D labels (17 = free).
            mask: (X, Y, Z) scored voxels (the camera mask).
            sigma: (x, y, z) the model's density in 1/m on its grid (a divisor of the GT's).
            classes: (x, y, z) the model's semantic argmax (0..16).
            passes: (x, y, z) rays through each model cell (``ray_cell_passes``).
            returns: (x, y, z) the LiDAR-returns volume on the model grid (``returns_volume``)
                or None. Defaults to None.
        """
        gt = np.asarray(gt)
        mask = np.asarray(mask).astype(bool)
        factors = grid_factors(gt.shape, sigma.shape)
        if classes.shape != sigma.shape or passes.shape != sigma.shape or (
                returns is not None and returns.shape != sigma.shape):
            raise ValueError(f'sigma {sigma.shape}, classes {classes.shape}, passes '
                             f'{passes.shape} and returns '
                             f'{None if returns is None else returns.shape} must share the '
                             'model grid')
        self.num_samples += 1
        classes_fine = upsample_nearest(classes, factors)
        for tau in self.thresholds:
            pred = upsample_nearest(np.where(sigma >= tau, classes, FREE_LABEL), factors)
            self.hist[tau] += occ_confusion_matrix(gt, pred, mask)
            if tau == self.tau:
                pred_tau = pred
        self._add_per_class(gt, pred_tau, mask)
        self.hist_semantics_only += occ_confusion_matrix(
            gt, free_where_gt_free(gt, classes_fine), mask)
        self.hist_ceiling += occ_confusion_matrix(
            gt, upsample_nearest(pool_majority(gt, factors), factors), mask)
        if returns is not None:
            self.hist_returns += occ_confusion_matrix(
                gt, upsample_nearest(returns, factors), mask)

        passes_fine = upsample_nearest(passes, factors)
        covered = passes_fine > 0
        self.cells_total += passes.size
        self.cells_crossed += int((passes > 0).sum())
        self.scored_total += int(mask.sum())
        self.scored_uncovered += int((mask & ~covered).sum())
        self.hist_covered += occ_confusion_matrix(gt, pred_tau, mask & covered)
        self.hist_uncovered += occ_confusion_matrix(gt, pred_tau, mask & ~covered)

        gt_occ, pred_occ = gt != FREE_LABEL, pred_tau != FREE_LABEL
        self.occupancy += [int((mask & gt_occ & pred_occ).sum()),
                           int((mask & ~gt_occ & pred_occ).sum()),
                           int((mask & gt_occ & ~pred_occ).sum())]
        ranges = voxel_ranges(gt.shape, self.pc_range)
        heights = np.broadcast_to(np.arange(gt.shape[2]), gt.shape)
        errors = dict(false_occupied=(mask & ~gt_occ, pred_occ),
                      missed_occupied=(mask & gt_occ, ~pred_occ))
        for kind, (selected, flagged) in errors.items():
            bins = self.binned[kind]
            if bins['height'] is None:
                bins['height'] = np.zeros((gt.shape[2], 2), np.int64)
            bins['range'] += binned_counts(ranges, RANGE_EDGES, selected, flagged)
            bins['height'] += binned_counts(heights, np.arange(gt.shape[2] + 1), selected,
                                            flagged)
            bins['passes'] += binned_counts(passes_fine, PASS_EDGES, selected, flagged)

    def add_render(self, name: str, depth: np.ndarray, gt_depth: np.ndarray,
                   losses: dict[str, float]) -> None:
        """Add one sample's rendering of a field ('model' or 'gt volume') on its rays.

        Args:
            name: which field was rendered.
            depth: (R,) rendered depth, metres. gt_depth: (R,) LiDAR depth of the same rays.
            losses: the model's render losses on these rays (``OccFlowNet.ray_losses``).
        """
        entry = self.render.setdefault(name, dict(losses={}, errors=[], depths=[]))
        for key, value in losses.items():
            entry['losses'].setdefault(key, []).append(float(value))
        entry['errors'].append(np.asarray(depth, np.float64) - np.asarray(gt_depth, np.float64))
        entry['depths'].append(np.asarray(gt_depth, np.float64))

    def add_depth_net(self, target_bins: np.ndarray, predicted_bins: np.ndarray,
                      target_probs: np.ndarray, target_depths: np.ndarray) -> None:
        """Add one sample's depth-net figures on its patches that hold a LiDAR point.

        Args:
            target_bins: (P,) the depth loss's target bin of each patch.
            predicted_bins: (P,) the depth net's most probable bin.
            target_probs: (P,) the depth net's probability of the target bin.
            target_depths: (P,) the patches' LiDAR depth (metres; binned by DEPTH_EDGES).
        """
        bins = np.digitize(np.asarray(target_depths, np.float64), np.asarray(DEPTH_EDGES[1:-1]))
        inside = (target_depths >= DEPTH_EDGES[0]) & (target_depths < DEPTH_EDGES[-1])
        distance = np.abs(np.asarray(target_bins) - np.asarray(predicted_bins))[inside]
        columns = np.stack([np.ones_like(distance, np.float64), distance == 0, distance <= 1,
                            np.asarray(target_probs, np.float64)[inside]], axis=1)
        np.add.at(self.depth_net, bins[inside], columns)

    def _depth_net_summary(self) -> dict:
        """{LiDAR depth bin: patches, exact %, within one bin %, mean target probability}."""
        out = {}
        for label, (count, exact, near, prob) in zip(bin_labels(DEPTH_EDGES), self.depth_net):
            out[label] = dict(patches=int(count),
                              exact=None if count == 0 else round(100 * exact / count, 2),
                              within_one_bin=None if count == 0 else round(100 * near / count, 2),
                              target_prob=None if count == 0 else round(prob / count, 4))
        return out

    def summary(self) -> dict:
        """All figures as a JSON-serialisable dict (percentages; None where undefined)."""
        def miou(hist: np.ndarray) -> float | None:
            value = occ_miou(hist)
            return None if np.isnan(value) else value

        tp, fp, fn = (int(v) for v in self.occupancy)
        out = dict(
            num_samples=self.num_samples,
            tau=self.tau,
            miou=miou(self.hist[self.tau]),
            per_class_iou={name: (None if np.isnan(v) else round(100 * float(v), 2))
                           for name, v in zip(CLASS_NAMES[:FREE_LABEL],
                                              per_class_iou(self.hist[self.tau]))},
            tau_sweep={f'{t:g}': miou(h) for t, h in self.hist.items()},
            miou_semantics_only=miou(self.hist_semantics_only),
            miou_grid_ceiling=miou(self.hist_ceiling),
            miou_returns_volume=miou(self.hist_returns) if self.hist_returns.any() else None,
            occupancy_iou=None if tp + fp + fn == 0 else round(100.0 * tp / (tp + fp + fn), 2),
            cells_crossed_pct=(None if self.cells_total == 0
                               else round(100.0 * self.cells_crossed / self.cells_total, 2)),
            scored_uncovered_pct=(None if self.scored_total == 0 else
                                  round(100.0 * self.scored_uncovered / self.scored_total, 2)),
            miou_covered=miou(self.hist_covered),
            miou_uncovered=miou(self.hist_uncovered),
            per_class=self._per_class_summary(),
            depth_net_by_depth=self._depth_net_summary() if self.depth_net.any() else {},
            render={})
        for kind, bins in self.binned.items():
            out[f'{kind}_by_range'] = dict(zip(bin_labels(RANGE_EDGES), _rate(bins['range'])))
            out[f'{kind}_by_height'] = ({} if bins['height'] is None else dict(
                zip(map(str, range(len(bins['height']))), _rate(bins['height']))))
            out[f'{kind}_by_passes'] = dict(zip(bin_labels(PASS_EDGES), _rate(bins['passes'])))
        for name, entry in self.render.items():
            errors = np.concatenate(entry['errors']) if entry['errors'] else np.zeros(0)
            depths = np.concatenate(entry['depths']) if entry['depths'] else np.zeros(0)
            bins = np.digitize(depths, np.asarray(DEPTH_EDGES[1:-1]))
            inside = (depths >= DEPTH_EDGES[0]) & (depths < DEPTH_EDGES[-1])
            out['render'][name] = dict(
                losses={k: round(float(np.mean(v)), 4) for k, v in entry['losses'].items()},
                median_depth_error_by_depth={
                    label: (round(float(np.median(errors[inside & (bins == i)])), 3)
                            if np.any(inside & (bins == i)) else None)
                    for i, label in enumerate(bin_labels(DEPTH_EDGES))})
        return out


    def _per_class_summary(self) -> dict:
        """{class: IoU, ceiling IoU, GT voxels, missed % / false-occupied % overall and by z
        layer} for the classes present in the GT or the predictions."""
        if self.per_class_height is None:
            return {}
        ious = per_class_iou(self.hist[self.tau])
        ceilings = per_class_iou(self.hist_ceiling)
        returns = per_class_iou(self.hist_returns)
        gt_count, missed, pred_count, false = self.per_class_height
        out = {}
        for c, name in enumerate(CLASS_NAMES[:FREE_LABEL]):
            if gt_count[c].sum() == 0 and pred_count[c].sum() == 0:
                continue
            out[name] = dict(
                iou=None if np.isnan(ious[c]) else round(100 * float(ious[c]), 2),
                ceiling=None if np.isnan(ceilings[c]) else round(100 * float(ceilings[c]), 2),
                returns=(None if np.isnan(returns[c]) or not self.hist_returns.any()
                         else round(100 * float(returns[c]), 2)),
                gt_voxels=int(gt_count[c].sum()),
                missed_occupied=_rate(np.array([[gt_count[c].sum(), missed[c].sum()]]))[0],
                false_occupied=_rate(np.array([[pred_count[c].sum(), false[c].sum()]]))[0],
                missed_occupied_by_height=dict(enumerate(
                    _rate(np.stack([gt_count[c], missed[c]], axis=1)))),
                false_occupied_by_height=dict(enumerate(
                    _rate(np.stack([pred_count[c], false[c]], axis=1)))))
        return out


def _format_per_class(per_class: dict) -> list[str]:
    """The per-class table: IoU, ceiling, missed and false-occupied rates (z layers 0-7)."""
    def num(v: float | None) -> str:
        return '  n/a' if v is None else f'{v:5.1f}'

    lines = ['  per class (%): IoU, grid ceiling, LiDAR-returns volume, GT voxels, missed (GT',
             '  voxels predicted free), false (predicted voxels GT-free), then missed/false by z',
             '  layer 0-7',
             f'    {"class":<21}{"IoU":>6}{"ceil":>6}{"rays":>6}{"GT vox":>9}{"missed":>7}'
             f'{"false":>7}   by z layer (missed/false)']
    for name, row in per_class.items():
        layers = ' '.join(
            f'{num(row["missed_occupied_by_height"].get(z)).strip()}/'
            f'{num(row["false_occupied_by_height"].get(z)).strip()}' for z in range(8))
        lines.append(f'    {name:<21}{num(row["iou"]):>6}{num(row["ceiling"]):>6}'
                     f'{num(row.get("returns")):>6}{row["gt_voxels"]:>9}{num(row["missed_occupied"]):>7}'
                     f'{num(row["false_occupied"]):>7}   {layers}')
    return lines


def format_summary(summary: dict) -> str:
    """The summary of :meth:`TrainingDiagnostics.summary` as a readable text report."""
    def pct(v: float | None) -> str:
        return '   n/a' if v is None else f'{v:6.2f}'

    lines = [f'Training diagnostics over {summary["num_samples"]} samples '
             f'(camera mask; tau = {summary["tau"]:g} on sigma)',
             f'  mIoU                                   {pct(summary["miou"])}',
             f'  mIoU with the GT free space (semantics) {pct(summary["miou_semantics_only"])}',
             f'  mIoU ceiling of the model grid          {pct(summary["miou_grid_ceiling"])}',
             f'  mIoU of the LiDAR-returns volume        '
             f'{pct(summary.get("miou_returns_volume"))}',
             f'  occupied-vs-free IoU                    {pct(summary["occupancy_iou"])}',
             f'  model cells crossed by a LiDAR ray (%)  {pct(summary["cells_crossed_pct"])}',
             f'  scored voxels in uncrossed cells (%)    {pct(summary["scored_uncovered_pct"])}',
             f'  mIoU in crossed / uncrossed cells       {pct(summary["miou_covered"])} / '
             f'{pct(summary["miou_uncovered"]).strip()}']
    for kind, what in ERROR_KINDS.items():
        for key, title in (('range', 'range (m)'), ('height', 'z layer'),
                           ('passes', 'ray passes')):
            lines.append(f'  {what} (%) by {title}:')
            lines.append('    ' + '  '.join(f'{k}: {pct(v).strip()}'
                                             for k, v in summary[f'{kind}_by_{key}'].items()))
    lines.extend(_format_per_class(summary.get('per_class', {})))
    lines.append('  tau sweep (mIoU): ' + '  '.join(
        f'{k}: {pct(v).strip()}' for k, v in summary['tau_sweep'].items()))
    if summary.get('depth_net_by_depth'):
        lines.append('  depth net of the key frame on LiDAR patches, by LiDAR depth (m): '
                     'patches, argmax bin exact / within one bin (%), target bin probability')
        for label, row in summary['depth_net_by_depth'].items():
            prob = 'n/a' if row['target_prob'] is None else f'{row["target_prob"]:.3f}'
            lines.append(f'    {label:>8}: {row["patches"]:7d} {pct(row["exact"])} / '
                         f'{pct(row["within_one_bin"]).strip()}  {prob}')
    for name, entry in summary['render'].items():
        losses = '  '.join(f'{k} {v:.4f}' for k, v in entry['losses'].items())
        errors = '  '.join(f'{k}: {"n/a" if v is None else f"{v:+.2f}"}'
                           for k, v in entry['median_depth_error_by_depth'].items())
        lines.append(f'  render, {name}: {losses}')
        lines.append(f'    median depth error (m) by LiDAR depth (m): {errors}')
    return '\n'.join(lines)
