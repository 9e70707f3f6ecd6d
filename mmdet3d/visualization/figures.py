"""Matplotlib helpers shared by the figures: Agg figures, class legends, atomic PNG saving.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot, no global
backend state), so they work headless and in parallel tests.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mmdet3d.structures.occ3d import CLASS_NAMES
from mmdet3d.utils.file_io import atomic_open

from .occ_palette import OCC3D_PALETTE, UNOBSERVED_COLOR


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    """A figure of ``width_in x height_in`` inches on an Agg canvas.

    Saved with :func:`save_figure`, the PNG is ``round(width_in * dpi)`` by
    ``round(height_in * dpi)`` pixels.
    """
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def class_legend_handles(labels: Iterable[int], unobserved: bool = False) -> list[Patch]:
    """Legend patches ``'<index> <name>'`` in the palette colour of each label.

    Args:
        labels: Occ3D labels (0..17) to list.
        unobserved: append a patch for columns outside the mask. Defaults to False.
    """
    handles = [Patch(facecolor=OCC3D_PALETTE[c] / 255.0, edgecolor='0.3', linewidth=0.5,
                     label=f'{c} {CLASS_NAMES[c]}') for c in sorted(set(labels))]
    if unobserved:
        handles.append(Patch(facecolor=UNOBSERVED_COLOR / 255.0, edgecolor='0.3',
                             linewidth=0.5, label='not observed (mask)'))
    return handles


def hide_ticks(ax: Axes) -> None:
    """Remove the ticks of an image panel (keeps the frame)."""
    ax.set_xticks([])
    ax.set_yticks([])


def save_figure(fig: Figure, path: str) -> str:
    """Write ``fig`` as a PNG at its own size and dpi: temporary file, then rename.

    Returns:
        ``path``.
    """
    with atomic_open(path) as f:
        fig.savefig(f, format='png', dpi=fig.dpi)
    return path


def figure_to_array(fig: Figure) -> np.ndarray:
    """(H, W, 4) uint8 RGBA rendering of a figure (for tests and notebooks)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()
