"""The occupancy-flow ground-truth file: one ``.npz`` of flow rows per key frame (spec 5.2).

``<flow_root>/<scene_name>/<token>.npz`` holds

- ``flow`` (n, 11) uint8, one row per moved voxel: ``[src z, y, x | tgt z, y, x | floor z, y, x |
  class | s]`` (columns :data:`~mmdet3d.structures.occ3d.FLOW_SRC` ... ``FLOW_FRAME``; ``s``
  indexes :data:`~mmdet3d.structures.occ3d.FLOW_FILE_OFFSETS`);
- ``T`` (m, 4, 4) float32, the rigid motion of each matched box (key frame -> frame ``s``);
- ``indices`` (n,) uint16, the row -> ``T`` index.

Written by ``tools/create_flow_data.py`` (:mod:`mmdet3d.datasets.converters.flow_gt` computes the
rows); read by ``LoadFlowGT`` (the rows only) and the flow-mechanism analysis (all three arrays).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmdet3d.structures.occ3d import FLOW_ROW_WIDTH
from mmdet3d.utils.file_io import atomic_write_bytes


@dataclass(frozen=True)
class FlowGT:
    """One sample's flow file: ``flow`` (n, 11) uint8 = [src z, y, x | tgt z, y, x |
    floor z, y, x | class | s], ``transforms`` (m, 4, 4) float32 box motions (saved as ``T``),
    ``indices`` (n,) uint16 row -> transform."""

    flow: np.ndarray
    transforms: np.ndarray
    indices: np.ndarray

    @classmethod
    def empty(cls) -> FlowGT:
        return cls(np.zeros((0, FLOW_ROW_WIDTH), np.uint8), np.zeros((0, 4, 4), np.float32),
                   np.zeros((0,), np.uint16))


def flow_file(flow_root: str, scene_name: str, token: str) -> str:
    """``<flow_root>/<scene_name>/<token>.npz``."""
    return os.path.join(flow_root, scene_name, f'{token}.npz')


def flow_path(flow_root: str, info: dict[str, Any]) -> str:
    """The flow file of an info (its ``scene_name`` and ``token``), see :func:`flow_file`."""
    return flow_file(flow_root, info['scene_name'], info['token'])


def save_flow(path: str, gt: FlowGT) -> None:
    """Atomically write ``flow``, ``T`` and ``indices`` with ``np.savez_compressed``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, flow=gt.flow, T=gt.transforms, indices=gt.indices)
    atomic_write_bytes(path, buffer.getvalue())


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'flow ground truth not found: {path}')
    return path


def _array(npz: Any, path: str, key: str) -> np.ndarray:
    if key not in npz.files:
        raise KeyError(f'{path} lacks the array "{key}" (found {npz.files})')
    return npz[key]


def _checked_rows(flow: np.ndarray, path: str) -> np.ndarray:
    """``flow`` as (n, 11) uint8; a wrong layout, dtype or value range raises ``ValueError``."""
    if flow.size == 0:
        return np.zeros((0, FLOW_ROW_WIDTH), np.uint8)
    if flow.ndim != 2 or flow.shape[1] != FLOW_ROW_WIDTH:
        raise ValueError(f'{path}: "flow" must be (n, {FLOW_ROW_WIDTH}) rows, got shape '
                         f'{flow.shape}')
    if not np.issubdtype(flow.dtype, np.integer):
        raise ValueError(f'{path}: "flow" must hold integers (uint8), got {flow.dtype}')
    if flow.min() < 0 or flow.max() > 255:
        raise ValueError(f'{path}: "flow" holds values {flow.min()}..{flow.max()}, outside the '
                         'uint8 range of voxel indices, classes and frame slots')
    return flow.astype(np.uint8, copy=False)


def load_flow_rows(path: str) -> np.ndarray:
    """The ``flow`` rows of a flow file, (n, 11) uint8 (``T`` and ``indices`` are not read).

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: the file has no ``flow`` array.
        ValueError: ``flow`` is not (n, 11) integers in 0..255.
    """
    with np.load(_existing(path), allow_pickle=False) as npz:
        return _checked_rows(_array(npz, path, 'flow'), path)


def load_flow(path: str) -> FlowGT:
    """All of a flow file: the rows, the box motions ``T`` and each row's motion index.

    Raises:
        FileNotFoundError, KeyError, ValueError: as :func:`load_flow_rows`, and a ``ValueError``
            when ``T`` is not (m, 4, 4) or ``indices`` has not one entry per row, each < m.
    """
    with np.load(_existing(path), allow_pickle=False) as npz:
        flow = _checked_rows(_array(npz, path, 'flow'), path)
        transforms = _array(npz, path, 'T')
        indices = _array(npz, path, 'indices')
    transforms = transforms.reshape(-1, 4, 4) if transforms.size == 0 else transforms
    if transforms.ndim != 3 or transforms.shape[1:] != (4, 4):
        raise ValueError(f'{path}: "T" must be (m, 4, 4), got shape {transforms.shape}')
    indices = indices.reshape(-1)
    if len(indices) != len(flow) or (len(indices) and not np.issubdtype(indices.dtype,
                                                                         np.integer)):
        raise ValueError(f'{path}: "indices" must hold one integer per flow row ({len(flow)}), '
                         f'got {len(indices)} of {indices.dtype}')
    if len(indices) and (indices.min() < 0 or indices.max() >= len(transforms)):
        raise ValueError(f'{path}: "indices" {indices.min()}..{indices.max()} outside the '
                         f'{len(transforms)} transforms "T"')
    return FlowGT(flow, transforms.astype(np.float32, copy=False),
                  indices.astype(np.uint16, copy=False))
