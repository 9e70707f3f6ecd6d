"""Compose RGB panels into one picture: titles, grids, class legends, atomic PNG writing.

Pixel-exact composition with numpy and Pillow (no matplotlib), used by the camera overlay, the
3-D view and the scene video. Images are (H, W, 3) uint8 RGB arrays.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mmdet3d.structures.occ3d import CLASS_NAMES
from mmdet3d.utils.file_io import atomic_open

from .occ_palette import OCC3D_PALETTE

WHITE = 255
#: Pixels between panels.
GAP = 4


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def text_bar(text: str, width: int, font_size: int = 14) -> np.ndarray:
    """(h, width, 3) white bar with ``text`` (may hold newlines) in black, left-aligned."""
    font = _font(font_size)
    lines = text.split('\n')
    line_height = font_size + 4
    bar = Image.new('RGB', (width, line_height * len(lines) + 4), (WHITE,) * 3)
    draw = ImageDraw.Draw(bar)
    for k, line in enumerate(lines):
        draw.text((4, 2 + k * line_height), line, fill=(0, 0, 0), font=font)
    return np.asarray(bar)


def titled(image: np.ndarray, title: str, font_size: int = 14) -> np.ndarray:
    """``image`` with a title bar above it."""
    return np.concatenate([text_bar(title, image.shape[1], font_size), image], axis=0)


def stack(images: Sequence[np.ndarray], axis: int, gap: int = GAP) -> np.ndarray:
    """Images side by side (``axis`` 1) or one above the other (``axis`` 0), white-padded.

    Smaller images are aligned to the top (axis 1) or the left (axis 0).
    """
    if not images:
        raise ValueError('stack needs at least one image')
    other = 1 - axis
    size = max(img.shape[other] for img in images)
    parts = []
    for k, img in enumerate(images):
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[other] = (0, size - img.shape[other])
        if k:
            gap_shape = [0, 0, 3]
            gap_shape[axis], gap_shape[other] = gap, size
            parts.append(np.full(gap_shape, WHITE, np.uint8))
        parts.append(np.pad(img, pad, constant_values=WHITE))
    return np.concatenate(parts, axis=axis)


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = GAP) -> np.ndarray:
    """Rows of images (each row left to right), rows top to bottom."""
    return stack([stack(row, axis=1, gap=gap) for row in rows], axis=0, gap=gap)


def legend_strip(entries: Sequence[tuple[np.ndarray, str]], width: int,
                 font_size: int = 13) -> np.ndarray:
    """Colour swatches with names, wrapped into lines of at most ``width`` pixels.

    Args:
        entries: (rgb (3,) uint8, name) per swatch.
        width: strip width (pixels).
    """
    font = _font(font_size)
    swatch, pad, line_height = font_size, 12, font_size + 8
    widths = [swatch + 4 + int(np.ceil(font.getlength(name))) + pad for _, name in entries]
    positions, x, line = [], 4, 0
    for item_width in widths:
        if x > 4 and x + item_width > width:
            x, line = 4, line + 1
        positions.append((x, line))
        x += item_width
    strip = Image.new('RGB', (width, (line + 1) * line_height + 4), (WHITE,) * 3)
    draw = ImageDraw.Draw(strip)
    for (rgb, name), (x, line) in zip(entries, positions):
        y = 4 + line * line_height
        draw.rectangle((x, y, x + swatch, y + swatch), fill=tuple(int(c) for c in rgb),
                       outline=(80, 80, 80))
        draw.text((x + swatch + 4, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def class_legend(labels: Sequence[int], width: int) -> np.ndarray:
    """:func:`legend_strip` of Occ3D labels: ``'<label> <name>'`` in the palette colour."""
    return legend_strip([(OCC3D_PALETTE[c], f'{c} {CLASS_NAMES[c]}') for c in sorted(labels)],
                        width)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an (H, W, 3) uint8 image to ``width`` x ``height``."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image scaled to fit ``width`` x ``height`` (aspect kept), centred on white."""
    scale = min(width / image.shape[1], height / image.shape[0])
    new_w = max(1, round(image.shape[1] * scale))
    new_h = max(1, round(image.shape[0] * scale))
    canvas = np.full((height, width, 3), WHITE, np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = resize(image, new_w, new_h)
    return canvas


def save_png(image: np.ndarray, path: str) -> str:
    """Write an (H, W, 3) uint8 image as a PNG atomically (temporary file, then rename)."""
    with atomic_open(path) as f:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(f, format='png')
    return path
