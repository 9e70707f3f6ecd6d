"""PIL's bicubic resize, computed only inside a crop window: ``img.resize(size).crop(box)``.

The paper pipeline resizes each 1600x900 camera image to ~1500x850 and keeps a 1408x512 window
of it; PIL resamples the whole image. :func:`resize_crop` resamples only the kept window with
PIL's own arithmetic (Pillow ``libImaging/Resample.c``, 8 bits per channel): the same filter
weights in double precision from the full image's scale, the same 22-bit fixed-point weights, the
horizontal pass (rounded to uint8) before the vertical one. The result equals PIL's byte for byte
(tested against PIL), at ~0.6 of the work. PIL's own ``resize(box=...)`` cannot do this: it takes
the box in float32, which moves the filter centres and changes pixel values.
"""
from __future__ import annotations

import numba as nb
import numpy as np

_PRECISION_BITS = 32 - 8 - 2  # PIL: 8-bit result, two bits of headroom for negative lobes
_BICUBIC_SUPPORT = 2.0
_BICUBIC_A = -0.5


def _bicubic(x: np.ndarray) -> np.ndarray:
    """PIL's bicubic kernel (a = -0.5), term by term in its order of operations."""
    x = np.abs(x)
    a = _BICUBIC_A
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def resample_weights(in_size: int, out_size: int, first: int, count: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed-point bicubic weights of outputs ``first .. first+count-1`` of a 1-D resize.

    Args:
        in_size: source length in pixels.
        out_size: resized length of the whole image.
        first, count: the output pixels wanted (within ``[0, out_size)``).

    Returns:
        start (count,) int64: first source pixel of each output; taps (count,) int64: source
        pixels it reads; weights (count, K) int32, zero past ``taps`` (K: the widest support).
    """
    scale = in_size / out_size  # PIL: (double)(in1 - in0) / outSize with box (0, in_size)
    filter_scale = max(scale, 1.0)
    support = _BICUBIC_SUPPORT * filter_scale
    kernel_size = int(np.ceil(support)) * 2 + 1
    centre = (np.arange(first, first + count, dtype=np.float64) + 0.5) * scale
    start = (centre - support + 0.5).astype(np.int64)  # C casts truncate towards zero
    start = np.maximum(start, 0)
    stop = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    offsets = np.arange(kernel_size)
    valid = offsets[None] < (stop - start)[:, None]  # (count, K)
    weights = _bicubic(((offsets[None] + start[:, None]) - centre[:, None] + 0.5)
                       * (1.0 / filter_scale))
    weights = np.where(valid, weights, 0.0)
    total = np.zeros(count)
    for tap in range(kernel_size):  # PIL sums the taps in order
        total = total + weights[:, tap]
    weights = weights / np.where(total == 0.0, 1.0, total)[:, None]  # PIL: only if total != 0
    fixed = weights * (1 << _PRECISION_BITS)
    fixed = np.where(weights < 0, -0.5 + fixed, 0.5 + fixed)
    return start, stop - start, np.trunc(fixed).astype(np.int32)


@nb.njit(cache=True)
def _resample_window(src: np.ndarray, col_start: np.ndarray, col_taps: np.ndarray,
                     col_weights: np.ndarray, row_start: np.ndarray, row_taps: np.ndarray,
                     row_weights: np.ndarray) -> np.ndarray:
    """Two-pass fixed-point resample of src (H, W, 3) uint8 to (len(rows), len(cols), 3).

    Output column x reads source columns ``col_start[x] + t`` for ``t < col_taps[x]`` with
    ``col_weights[x, t]``; rows likewise. Each pass rounds to uint8 as PIL does.
    """
    half = np.int32(1 << (_PRECISION_BITS - 1))
    n_rows, n_cols = row_start.shape[0], col_start.shape[0]
    first_row = row_start[0]
    last_row = row_start[-1] + row_taps[-1]
    # horizontal pass over the source rows the vertical pass reads
    tmp = np.empty((last_row - first_row, n_cols * 3), dtype=np.uint8)
    for y in range(last_row - first_row):
        row = src[first_row + y]
        line = tmp[y]
        for x in range(n_cols):
            acc0 = acc1 = acc2 = half
            x0 = col_start[x]
            for t in range(col_taps[x]):
                w = col_weights[x, t]
                acc0 += np.int32(row[x0 + t, 0]) * w
                acc1 += np.int32(row[x0 + t, 1]) * w
                acc2 += np.int32(row[x0 + t, 2]) * w
            line[3 * x] = min(max(acc0 >> _PRECISION_BITS, 0), 255)
            line[3 * x + 1] = min(max(acc1 >> _PRECISION_BITS, 0), 255)
            line[3 * x + 2] = min(max(acc2 >> _PRECISION_BITS, 0), 255)
    # vertical pass, a whole output row at a time
    out = np.empty((n_rows, n_cols * 3), dtype=np.uint8)
    acc = np.empty(n_cols * 3, dtype=np.int32)
    for y in range(n_rows):
        acc[:] = half
        y0 = row_start[y] - first_row
        for t in range(row_taps[y]):
            w = row_weights[y, t]
            line = tmp[y0 + t]
            for i in range(n_cols * 3):
                acc[i] += np.int32(line[i]) * w
        for i in range(n_cols * 3):
            out[y, i] = min(max(acc[i] >> _PRECISION_BITS, 0), 255)
    return out.reshape(n_rows, n_cols, 3)


def resize_crop(img: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int],
                flip: bool = False) -> np.ndarray:
    """``PIL.Image.fromarray(img).resize(size).crop(box)`` (bicubic), only the window computed.

    Args:
        img: (H, W, 3) uint8 source image.
        size: (W', H') resized size.
        box: (x0, y0, x1, y1) integer window in the resized image; parts outside it are zero,
            as PIL's crop fills them.
        flip: also mirror the window left-right (``Image.FLIP_LEFT_RIGHT`` after the crop).

    Returns:
        (y1 - y0, x1 - x0, 3) uint8.
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'resize_crop needs an (H, W, 3) uint8 image, got {img.dtype} '
                         f'{img.shape}')
    (height, width), (new_w, new_h) = img.shape[:2], size
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    cx0, cx1 = max(x0, 0), min(x1, new_w)  # the part of the window inside the image
    cy0, cy1 = max(y0, 0), min(y1, new_h)
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    cols = resample_weights(width, new_w, cx0, cx1 - cx0)
    if flip:  # mirrored output columns: the same weights in reverse order, mirrored placement
        cols = tuple(np.ascontiguousarray(a[::-1]) for a in cols)
        cx0, cx1 = x0 + x1 - cx1, x0 + x1 - cx0
    out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = _resample_window(
        np.ascontiguousarray(img), *cols, *resample_weights(height, new_h, cy0, cy1 - cy0))
    return out
