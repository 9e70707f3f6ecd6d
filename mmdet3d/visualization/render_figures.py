"""Per-camera figure of rendered rays: LiDAR ground truth vs the volume rendering at each pixel."""
from __future__ import annotations

import os.path as osp

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .camera_rays import CameraRays
from .figures import class_legend_handles, hide_ticks, new_figure, save_figure
from .occ_palette import label_colors, present_classes

# Layout in inches: image panel width, gap between panels, legend column, figure title band,
# panel title band (above each panel) and colour-bar band (below each panel).
PANEL_IN = 5.0
GAP_IN = 0.1
LEGEND_IN = 2.6
SUPTITLE_IN = 0.6
PANEL_TITLE_IN = 0.3
CBAR_IN = 0.5


def camera_figure_size(image_hw: tuple[int, int], dpi: int = 100) -> tuple[int, int]:
    """(width, height) in pixels of :func:`camera_render_figure` for an (H, W) image."""
    height, width = image_hw
    row_in = PANEL_TITLE_IN + PANEL_IN * height / width + CBAR_IN
    return (round((3 * PANEL_IN + 4 * GAP_IN + LEGEND_IN) * dpi),
            round((SUPTITLE_IN + 2 * row_in) * dpi))


def _dots(ax: Axes, background: np.ndarray, pixels: np.ndarray, size: float, title: str,
          **scatter_kw):
    """Dimmed greyscale image with one dot per ray at its pixel centre."""
    gray = background.astype(np.float32).mean(axis=2)
    ax.imshow(gray, cmap='gray', vmin=0, vmax=255, alpha=0.45, interpolation='nearest')
    ax.set_xlim(-0.5, background.shape[1] - 0.5)
    ax.set_ylim(background.shape[0] - 0.5, -0.5)
    hide_ticks(ax)
    ax.set_title(title, fontsize=9)
    return ax.scatter(pixels[:, 0], pixels[:, 1], s=size, marker='s', linewidths=0,
                      **scatter_kw)


def camera_render_figure(cam: CameraRays, title: str = '', max_depth: float | None = None,
                         dpi: int = 100) -> Figure:
    """Camera image, LiDAR GT depth/class and rendered depth/class as dots at the ray pixels.

    Layout: [image | GT depth | GT class] over [|depth error| | rendered depth | rendered
    class]; depths share one colour scale, classes use the Occ3D palette (legend on the right).

    Args:
        cam: rays of one camera (:func:`~mmdet3d.analysis.render_inspection.inspect_render`).
        title: figure title. Defaults to ''.
        max_depth: top of the depth colour scale (m); defaults to the largest GT depth.
        dpi: dots per inch; the size is :func:`camera_figure_size`. Defaults to 100.
    """
    height, width = cam.image.shape[:2]
    width_px, height_px = camera_figure_size((height, width), dpi)
    fig = new_figure(width_px / dpi, height_px / dpi, dpi)
    fig_w, fig_h = width_px / dpi, height_px / dpi
    panel_h_in = PANEL_IN * height / width

    def rect(left_in: float, top_in: float, w_in: float, h_in: float) -> tuple:
        """Axes rectangle from inches measured from the figure's top-left corner."""
        return (left_in / fig_w, 1 - (top_in + h_in) / fig_h, w_in / fig_w, h_in / fig_h)

    tops = [SUPTITLE_IN + PANEL_TITLE_IN + r * (PANEL_TITLE_IN + panel_h_in + CBAR_IN)
            for r in range(2)]
    lefts = [GAP_IN + c * (PANEL_IN + GAP_IN) for c in range(3)]
    axes = [[fig.add_axes(rect(left, top, PANEL_IN, panel_h_in)) for left in lefts]
            for top in tops]
    # dot area (points^2) of about 1.2 image pixels, at least ~2.5 screen pixels wide
    size = float(np.clip(1.5 * (PANEL_IN * 72.0 / width) ** 2, 3.0, 30.0))
    if max_depth is None:
        max_depth = float(cam.gt_depth.max()) if len(cam.gt_depth) else 1.0
    depth_kw = dict(cmap='turbo', vmin=0.0, vmax=max_depth)
    kind = cam.depth_kind
    err = np.abs(cam.depth - cam.gt_depth)
    correct = float((cam.label == cam.gt_label).mean() * 100) if len(cam.label) else float('nan')

    axes[0][0].imshow(cam.image, interpolation='nearest')
    hide_ticks(axes[0][0])
    axes[0][0].set_title(f'{cam.name} (augmented input image)', fontsize=9)
    depth_im = _dots(axes[0][1], cam.image, cam.pixels, size, f'LiDAR {kind} (GT)',
                     c=cam.gt_depth, **depth_kw)
    _dots(axes[0][2], cam.image, cam.pixels, size, 'LiDAR class (GT)',
          c=label_colors(cam.gt_label) / 255.0)
    err_max = max(max_depth / 4, 1e-3)
    err_im = _dots(axes[1][0], cam.image, cam.pixels, size,
                   f'|rendered - GT| {kind}, median {np.median(err) if len(err) else 0:.2f} m',
                   c=err, cmap='magma', vmin=0.0, vmax=err_max)
    _dots(axes[1][1], cam.image, cam.pixels, size, f'rendered {kind}', c=cam.depth,
          **depth_kw)
    _dots(axes[1][2], cam.image, cam.pixels, size,
          f'rendered class (argmax), {correct:.1f}% = GT', c=label_colors(cam.label) / 255.0)

    for im, (r, c), label in ((depth_im, (0, 1), f'{kind} [m] (GT and rendered)'),
                              (err_im, (1, 0), f'absolute error [m] (clipped at {err_max:.1f})')):
        cax = fig.add_axes(rect(lefts[c] + 0.25 * PANEL_IN, tops[r] + panel_h_in + 0.08,
                                0.5 * PANEL_IN, 0.1))
        cbar = fig.colorbar(im, cax=cax, orientation='horizontal')
        cbar.ax.tick_params(labelsize=7)
        cbar.set_label(label, fontsize=7, labelpad=1)
    fig.legend(handles=class_legend_handles(present_classes(cam.gt_label, cam.label)),
               loc='center right', fontsize=8, frameon=False, title='class',
               title_fontsize=9)
    shown = f'{len(cam.pixels)} key-frame LiDAR rays' if len(cam.pixels) == cam.num_total else \
        f'{len(cam.pixels)} of {cam.num_total} key-frame LiDAR rays (random subset)'
    fig.suptitle(f'{title}\n{shown}; dots at the augmented pixel of each ray' if title else shown,
                 fontsize=10)
    return fig


def write_render_figures(cams: list[CameraRays], out_dir: str, title: str = '',
                         dpi: int = 100) -> list[str]:
    """Write ``<out_dir>/<camera>.png`` per camera; depths share one colour scale.

    Returns:
        the written paths, in camera order.
    """
    depths = [c.gt_depth for c in cams if len(c.gt_depth)]
    max_depth = float(max(d.max() for d in depths)) if depths else 1.0
    return [save_figure(camera_render_figure(cam, f'{title} / {cam.name}' if title else cam.name,
                                             max_depth, dpi), osp.join(out_dir, f'{cam.name}.png'))
            for cam in cams]
