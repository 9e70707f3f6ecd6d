"""Pair saved occupancy predictions with their Occ3D ground truth and draw them.

Predictions are the files of ``tools/test.py --out DIR`` (:mod:`mmdet3d.formats.occ_predictions`),
ground truth the Occ3D ``<occ_path>/labels.npz`` (:mod:`mmdet3d.formats.occ3d_labels`).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.formats.occ3d_labels import load_occ_gt
from mmdet3d.formats.occ_predictions import find_predictions, load_prediction
from mmdet3d.structures.occ3d import POINT_CLOUD_RANGE

from .figures import save_figure
from .occ_figures import bev_comparison_figure

MASKS = ('camera', 'lidar', 'none')


@dataclass
class OccSample:
    """One prediction file, the folder of its ground truth (None: prediction only) and its info
    (with ``--info``: the camera calibration and image paths; None otherwise)."""

    scene: str
    token: str
    pred_path: str
    occ_path: str | None
    info: dict | None = None


def _prefixed(path: str, prefix: str | None) -> str:
    """``prefix/path`` for a relative ``path`` and a given ``prefix``, else ``path``."""
    return path if prefix is None or osp.isabs(path) else osp.join(prefix, path)


def pair_samples(pred_dir: str, info_file: str | None = None, gt_root: str | None = None,
                 path_prefix: str | None = None) -> list[OccSample]:
    """Predictions with their GT folder.

    Args:
        pred_dir: prediction root.
        info_file: info pkl; its ``occ_path`` gives the GT folder and its timestamps the order.
            Only infos with a prediction file are kept.
        gt_root: alternatively, the Occ3D ``gts`` folder (``<gt_root>/<scene>/<token>``).
        path_prefix: joined to relative ``occ_path`` and camera ``data_path`` values (default:
            relative to the working directory, i.e. the repository root, as in the infos).

    Returns:
        samples in timestamp order (``info_file``) or sorted by scene and token.

    Raises:
        FileNotFoundError: no prediction file found (or none matches an info).
    """
    if info_file is not None and gt_root is not None:
        raise ValueError('give either info_file or gt_root, not both')
    found = find_predictions(pred_dir)
    if not found:
        raise FileNotFoundError(f'no prediction files <scene>/<token>.npz under {pred_dir}')
    if info_file is None:
        return [OccSample(scene, token, path,
                          None if gt_root is None else osp.join(gt_root, scene, token))
                for scene, token, path in found]
    by_token = {token: (scene, path) for scene, token, path in found}
    infos, _ = load_infos(info_file, required_keys=('token', 'occ_path', 'timestamp'))
    samples = []
    for info in sorted(infos, key=lambda i: i['timestamp']):
        if info['token'] not in by_token:
            continue
        scene, path = by_token[info['token']]
        occ_path = _prefixed(info['occ_path'], path_prefix)
        if path_prefix is not None and isinstance(info.get('cams'), dict):
            info = dict(info, cams={cam: dict(entry, data_path=_prefixed(
                entry.get('data_path', ''), path_prefix)) for cam, entry in info['cams'].items()})
        samples.append(OccSample(scene, info['token'], path, occ_path, info))
    if not samples:
        raise FileNotFoundError(f'none of the {len(found)} predictions under {pred_dir} '
                                f'belongs to a sample of {info_file}')
    return samples


def load_sample_volumes(sample: OccSample, mask: str = 'camera'
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Prediction, GT and GT visibility mask of a sample, each (X, Y, Z).

    Args:
        sample: the sample. mask: 'camera', 'lidar' or 'none'. Defaults to 'camera'.

    Returns:
        pred uint8; gt (None without a GT folder); the mask (None without GT or for 'none').
    """
    if mask not in MASKS:
        raise ValueError(f'mask must be one of {MASKS}, got {mask!r}')
    pred = load_prediction(sample.pred_path)
    if sample.occ_path is None:
        return pred, None, None
    labels = load_occ_gt(sample.occ_path, sample.token, shape=pred.shape)
    return pred, labels['semantics'], None if mask == 'none' else labels[f'mask_{mask}']


def write_occupancy_figures(samples: list[OccSample], out_dir: str, mask: str = 'camera',
                            shade: bool = True,
                            pc_range: Sequence[float] = POINT_CLOUD_RANGE,
                            dpi: int = 100) -> list[str]:
    """Write ``<out_dir>/<scene>/<token>.png`` (GT vs prediction BEV) per sample.

    Args:
        samples: output of :func:`pair_samples`.
        out_dir: output root.
        mask: GT visibility mask applied to both maps: 'camera', 'lidar' or 'none'.
        shade: height shading of the BEV maps. Defaults to True.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
        dpi: figure resolution. Defaults to 100.

    Returns:
        the written paths, in sample order.
    """
    if mask not in MASKS:
        raise ValueError(f'mask must be one of {MASKS}, got {mask!r}')
    written = []
    for sample in samples:
        pred, gt, vis = load_sample_volumes(sample, mask)
        title = f'{sample.scene} / {sample.token}'
        stem = osp.join(out_dir, sample.scene, sample.token)
        written.append(save_figure(
            bev_comparison_figure(pred, gt, vis, title, pc_range, shade, dpi), f'{stem}.png'))
    return written
