"""Reading one predicted data sample for a metric: its ``pred_occ`` and its Occ3D ground truth.

A sample is an ``OccDataSample`` or its ``to_dict()`` (what mmengine's Evaluator hands to
``process``): ``pred_occ`` (n_tau, X, Y, Z) uint8, metainfo ``sample_idx`` (token) and either
``gt_occ`` (dict of (X, Y, Z) arrays) or ``occ_path`` (folder of ``labels.npz``).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from mmdet3d.formats.occ3d_labels import load_occ_gt


def to_numpy(value: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_mapping(sample: Mapping | BaseDataElement) -> Mapping:
    """The sample's fields and metainfo as one mapping."""
    return sample.to_dict() if isinstance(sample, BaseDataElement) else sample


def predicted_labels(sample: Mapping, owner: str) -> np.ndarray | torch.Tensor:
    """The sample's ``pred_occ`` as (n_tau, X, Y, Z), type and device kept.

    Args:
        sample: see the module docstring.
        owner: the metric's name, put in front of error messages.

    Raises:
        KeyError: no ``pred_occ``. ValueError: not 3- or 4-dimensional.
    """
    token = sample.get('sample_idx', '?')
    if 'pred_occ' not in sample:
        raise KeyError(f'{owner}: sample {token} has no pred_occ; the model must set it in '
                       'predict mode (docs/data_flow.md section 4)')
    pred = sample['pred_occ']
    if pred.ndim == 3:
        pred = pred[None]
    if pred.ndim != 4:
        raise ValueError(f'{owner}: pred_occ of sample {token} must be (n_tau, X, Y, Z), got '
                         f'shape {tuple(pred.shape)}')
    return pred


def sample_ground_truth(sample: Mapping, keys: Sequence[str], shape: tuple[int, ...],
                        path_prefix: str | None, owner: str) -> dict[str, np.ndarray]:
    """The sample's Occ3D GT: ``gt_occ`` if present, else ``<occ_path>/labels.npz``.

    Args:
        sample: see the module docstring.
        keys: arrays that ``gt_occ`` must hold, e.g. ``('semantics', 'mask_camera')``.
        shape: the prediction's (X, Y, Z), checked against the file.
        path_prefix: joined to a relative ``occ_path``; None uses it as given.
        owner: the metric's name, put in front of error messages.

    Returns:
        (X, Y, Z) numpy arrays by name (all of ``gt_occ``, or the file's three).

    Raises:
        KeyError: ``gt_occ`` lacks one of ``keys``, or neither ``gt_occ`` nor ``occ_path``.
        FileNotFoundError, OccGTError: as :func:`~mmdet3d.formats.occ3d_labels.load_occ_gt`.
    """
    token = sample.get('sample_idx')
    gt = sample.get('gt_occ')
    if gt is not None:
        missing = [k for k in keys if k not in gt]
        if missing:
            raise KeyError(f'{owner}: gt_occ of sample {token} lacks {missing}')
        return {k: to_numpy(v) for k, v in gt.items()}
    occ_path = sample.get('occ_path')
    if occ_path is None:
        raise KeyError(f'{owner}: sample {token} has neither gt_occ nor occ_path in its '
                       'metainfo')
    if path_prefix is not None and not osp.isabs(occ_path):
        occ_path = osp.join(path_prefix, occ_path)
    return load_occ_gt(occ_path, token=token, shape=shape)
