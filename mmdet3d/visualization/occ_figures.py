"""Occupancy figures: GT vs prediction bird's-eye views."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mmdet3d.evaluation.functional.occ_miou import occ_confusion_matrix, occ_miou
from mmdet3d.structures.occ3d import POINT_CLOUD_RANGE

from .figures import class_legend_handles, new_figure
from .occ_palette import (UNOBSERVED, bev_disagreement, bev_image, bev_top_labels, present_classes)

# Layout of :func:`bev_comparison_figure` in inches: width per map, legend width, height.
BEV_PANEL_IN = 5.2
BEV_LEGEND_IN = 3.0
BEV_HEIGHT_IN = 5.6


def bev_figure_size(num_panels: int, dpi: int = 100) -> tuple[int, int]:
    """(width, height) in pixels of a :func:`bev_comparison_figure` with ``num_panels``."""
    return (round((num_panels * BEV_PANEL_IN + BEV_LEGEND_IN) * dpi),
            round(BEV_HEIGHT_IN * dpi))


def _bev_extent(pc_range: Sequence[float]) -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) of a display-oriented BEV image: +y left."""
    x0, y0, _, x1, y1, _ = pc_range
    return (y1, y0, x0, x1)


def _style_bev(ax: Axes, title: str) -> None:
    """Title, metric axis labels and the ego vehicle at the origin."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel('y (left) [m]', fontsize=8)
    ax.set_ylabel('x (forward) [m]', fontsize=8)
    ax.tick_params(labelsize=7)
    ax.plot([0], [0], marker='^', markersize=7, color='k', markeredgecolor='w', zorder=3)


def draw_bev(ax: Axes, image: np.ndarray, title: str, pc_range: Sequence[float]) -> None:
    """Show a display-oriented (X, Y, 3) BEV image with metric axes and the ego vehicle."""
    ax.imshow(image, extent=_bev_extent(pc_range), interpolation='nearest')
    _style_bev(ax, title)


def bev_comparison_figure(pred: np.ndarray,
                          gt: np.ndarray | None = None,
                          mask: np.ndarray | None = None,
                          title: str = '',
                          pc_range: Sequence[float] = POINT_CLOUD_RANGE,
                          shade: bool = True,
                          dpi: int = 100) -> Figure:
    """GT, prediction and per-column disagreement as top-down maps, with a class legend.

    Each map shows the class of the highest non-free voxel of every column (brighter = higher
    when ``shade``). With ``mask`` both GT and prediction show only the masked voxels and the
    title gives the sample's mIoU over them (classes 0-16, Occ3D rule).

    Args:
        pred: (X, Y, Z) predicted labels (17 = free).
        gt: (X, Y, Z) GT labels, or None for a prediction-only figure. Defaults to None.
        mask: (X, Y, Z) visibility (e.g. ``mask_camera``) or None. Defaults to None.
        title: figure title (e.g. scene and token). Defaults to ''.
        pc_range: metric extent of the volume. Defaults to the Occ3D range.
        shade: height shading of the maps. Defaults to True.
        dpi: dots per inch; the size is :func:`bev_figure_size`. Defaults to 100.
    """
    pred = np.asarray(pred)
    if gt is not None and np.shape(gt) != pred.shape:
        raise ValueError(f'GT shape {np.shape(gt)} and prediction shape {pred.shape} differ')
    num_panels = 1 if gt is None else 3
    width_px, height_px = bev_figure_size(num_panels, dpi)
    fig = new_figure(width_px / dpi, height_px / dpi, dpi)
    legend_frac = BEV_LEGEND_IN * dpi / width_px
    axes = [fig.add_axes((0.04 + i * (1 - legend_frac) / num_panels, 0.1,
                          (1 - legend_frac) / num_panels - 0.055, 0.78))
            for i in range(num_panels)]
    masked = '' if mask is None else ' (camera mask)'
    pred_labels, _ = bev_top_labels(pred, mask)
    shown = [pred_labels]
    if gt is None:
        draw_bev(axes[0], bev_image(pred, mask, shade), f'prediction{masked}', pc_range)
    else:
        gt_labels, _ = bev_top_labels(gt, mask)
        shown.append(gt_labels)
        draw_bev(axes[0], bev_image(gt, mask, shade), f'ground truth{masked}', pc_range)
        draw_bev(axes[1], bev_image(pred, mask, shade), f'prediction{masked}', pc_range)
        error = np.ma.masked_invalid(bev_disagreement(gt, pred, mask))
        ax = axes[2]
        ax.set_facecolor('0.85')
        im = ax.imshow(error, extent=_bev_extent(pc_range), cmap='Reds', vmin=0.0, vmax=1.0,
                       interpolation='nearest')
        _style_bev(ax, 'voxels with a wrong label, per column')
        cbar = fig.colorbar(im, cax=ax.inset_axes((1.03, 0.0, 0.04, 1.0)))
        cbar.set_label('fraction of the column\'s visible voxels', fontsize=7)
        cbar.ax.tick_params(labelsize=7)
        miou = occ_miou(occ_confusion_matrix(gt, pred, mask))
        title = f'{title}\nsample mIoU{masked}: {miou:.2f}' if title else \
            f'sample mIoU{masked}: {miou:.2f}'
    unobserved = any((labels == UNOBSERVED).any() for labels in shown)
    handles = class_legend_handles(present_classes(*shown), unobserved=unobserved)
    fig.legend(handles=handles, loc='center right', fontsize=8, frameon=False,
               title='top voxel class', title_fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    if shade:
        fig.text(0.01, 0.015, 'BEV: class of the highest non-free voxel; darker = lower, '
                 'white = free column; ▲ ego', fontsize=7, color='0.3')
    return fig
