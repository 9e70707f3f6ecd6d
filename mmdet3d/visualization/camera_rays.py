"""The rays of one camera as ``render_figures`` draws them: LiDAR ground truth and rendering.

Filled by :func:`mmdet3d.analysis.render_inspection.inspect_render` (numpy arrays only, so that
the figures need neither the model nor the data pipeline).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraRays:
    """Key-frame rays of one camera: ground truth and rendering at their pixels.

    Attributes:
        name: camera name.
        image: (H, W, 3) uint8 RGB augmented input image (what the model sees).
        pixels: (R, 2) int64 augmented pixel (u, v) of each ray.
        gt_depth: (R,) float32 LiDAR depth (``depth_kind``).
        gt_label: (R,) int64 LiDAR class 0..16.
        depth: (R,) float32 rendered depth in the same convention as ``gt_depth``.
        label: (R,) int64 argmax of the rendered logits.
        depth_kind: 'z-depth' (camera z, the original) or 'range' (``depth_along_ray``).
        num_total: key-frame rays of this camera before any subsampling.
    """

    name: str
    image: np.ndarray
    pixels: np.ndarray
    gt_depth: np.ndarray
    gt_label: np.ndarray
    depth: np.ndarray
    label: np.ndarray
    depth_kind: str
    num_total: int
