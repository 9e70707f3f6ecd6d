"""What occupancy flow contributes: other frames' LiDAR points on moving objects vs the key frame.

A mechanism figure that needs no training (issue 30, step 3). OccFlowNet supervises the key
frame's predicted volume with the LiDAR rays of the render frames t-3..t+3. ``GenerateRays``
moves every render frame's LiDAR points into the key frame's LiDAR-timestamp ego frame E0 by the
ego motion only (``key_ego_inv @ ego2global_f @ lidar2ego_f``), so a point on an object that
moved between frame f and the key frame lands where the object *was* at f, not where it is in
the key frame's volume. The ``_2d_flow`` renderer does not move the rays: it moves the key
frame's dynamic voxels *forward* into one volume per render frame (``apply_flow_clipped``: each
flow row's source voxel, inside the key-frame box, is copied to where the box's rigid motion
``T`` takes it at frame f, all in E0), and frame f's rays read that volume.

Definition (per split; ``infos`` sorted by timestamp as the dataset and the flow writer do):

- *Frames.* For each key sample k and each render offset o != 0 (``render_frame_ids``, -3..3 in
  the configs) the frame index is the dataset's: j = clamp(k + o) if that sample is in k's scene,
  else k. j == k (the scene-boundary copy of the key frame) is skipped. j != k + o (clamped at
  either end of the info list) is kept but flagged ``clamped``: its rays come from offset j - k
  while the renderer applies the flow rows of slot o, of which the flow file has none.
- *Points.* Frame j's LiDAR points whose panoptic label is a flow class (Occ3D labels
  ``FLOW_CLASSES``, via ``LIDARSEG_TO_OCC3D``) with an instance id > 0, strictly inside the
  Occ3D range after the ego-motion map into E0 (``GenerateRays``' ``pc_range`` filter; the camera
  visibility filter is not applied). A panoptic instance id is tied to an annotation of frame j
  by majority vote of its points over frame j's boxes (box test in frame j's LiDAR frame,
  ``ASSOCIATION_MARGIN``); it counts if the key sample has an annotation with the same instance
  token (valid or not).
- *Moving / slow / static.* d = displacement of the box centre between frame j and the key
  frame (global frame). Moving: d > ``MOVING_THRESHOLD`` (0.5 m). Static, the control:
  d <= ``STATIC_THRESHOLD`` (0.05 m; parked vehicles). Slow: in between (pedestrians and slow
  objects one frame apart, reported apart because 0.05-0.5 m already moves points out of a
  0.7 m box).
- *Without flow.* The point mapped by the ego motion, p = E0_from_lidar_j @ x, lies inside the
  instance's key-frame box enlarged by ``BOX_MARGIN`` (0.2 m) on every side (half-sizes + 0.2).
- *With flow.* The renderer places the key-frame box at T(box) in frame f's volume, so a frame-f
  sample point p hits the object iff T^-1 p lies in the key-frame box: the inverse of the
  renderer's forward warp, tested with the same enlarged box. T is the instance's per-box motion
  stored in the flow file (``T``, rows -> ``indices``), found as the stored transform of the
  slot's frame that maps the key-frame box pose onto the frame-j box pose in E0. An instance
  without rows for that slot (no valid key-frame box, centre outside the range, or a clamped slot)
  is not moved by the renderer either: T = identity, counted in ``no_flow_rows``.
- *Renderer voxels* (the same question in the renderer's own terms): the key frame's Occ3D
  ``semantics`` as a perfect prediction (density 1 on occupied voxels, one-hot semantics) is
  warped into frame f's volume by ``apply_flow_clipped`` with the rows ``LoadFlowGT`` gives the
  renderer (``remap_flow``, classes ``FLOW_CLASSES``, no BEV flip); a point hits if its voxel in
  the Occ3D grid is occupied with the point's class, before (``hit_without``) and after
  (``hit_with``) the warp. This is at the Occ3D 0.4 m grid; the CPU config's 0.8 m grid divides
  the rows down (``downsample_flow``) and is not measured here.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from mmdet3d.datasets.converters.flow_gt import EgoBoxes, movable_boxes
from mmdet3d.datasets.transforms.flow_gt import remap_flow
from mmdet3d.datasets.transforms.points import load_lidar_points
from mmdet3d.datasets.transforms.utils import check_file, sensor_poses
from mmdet3d.formats.flow_rows import load_flow
from mmdet3d.formats.occ3d_labels import load_occ_gt
from mmdet3d.models.rendering.flow_warping import apply_flow_clipped
from mmdet3d.structures.occ3d import (
    CLASS_NAMES,
    FLOW_CLASSES,
    FLOW_FILE_OFFSETS,
    FLOW_FRAME,
    FREE_LABEL,
    GRID_LOWER,
    GRID_SHAPE,
    LIDARSEG_TO_OCC3D,
    NUM_SEMANTIC_CLASSES,
    POINT_CLOUD_RANGE,
    VOXEL_SIZE,
)
from mmdet3d.structures.voxel_grids import swap_x_z

#: Box centre displacement (m) between frame f and the key frame above which an object moves.
MOVING_THRESHOLD = 0.5
#: Displacement (m) at or below which an object counts as static (the control group); objects
#: between this and ``MOVING_THRESHOLD`` (mostly pedestrians one frame apart) are ``slow``.
STATIC_THRESHOLD = 0.05
#: Margin (m) added to every half-size of the key-frame box for the inside test.
BOX_MARGIN = 0.2
#: Margin (m) of the frame-f box test that ties a panoptic instance id to an annotation.
ASSOCIATION_MARGIN = 0.1
#: Pose tolerance (m, and rotation-matrix entries) for matching a stored flow transform.
POSE_TOLERANCE = 1e-2
#: Render offsets of the configs (``render_frame_ids``).
RENDER_FRAME_IDS: tuple[int, ...] = (-3, -2, -1, 0, 1, 2, 3)


@dataclass
class PointRecords:
    """Per-point outcome of the measurement, all (P,) arrays.

    Attributes:
        label: int64 Occ3D class of the point (panoptic label).
        offset: int64 render offset o of the slot.
        displacement: float64 box centre displacement (m) between frame j and the key frame.
        clamped: bool, the slot's frame was clamped by the dataset (j != k + o).
        has_flow: bool, the flow file holds the instance's transform for the slot.
        inside_without: bool, ego-motion-mapped point inside the enlarged key-frame box.
        inside_with: bool, flow-inverse-warped point inside the enlarged key-frame box.
        hit_without: bool, the point's voxel in the key volume holds its class.
        hit_with: bool, the point's voxel in the renderer's warped frame volume holds its class.
    """

    label: np.ndarray
    offset: np.ndarray
    displacement: np.ndarray
    clamped: np.ndarray
    has_flow: np.ndarray
    inside_without: np.ndarray
    inside_with: np.ndarray
    hit_without: np.ndarray
    hit_with: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[PointRecords]) -> PointRecords:
        """All parts' points in order (an empty record set for no parts)."""
        dtypes = dict(label=np.int64, offset=np.int64, displacement=np.float64)
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      if parts else np.zeros(0, dtypes.get(f.name, bool))
                      for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.label)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rigid transform(s) applied to points.

    Args:
        matrix: (4, 4) one transform, or (P, 4, 4) one per point.
        points: (P, 3).

    Returns:
        (P, 3) float64.
    """
    points = np.asarray(points, dtype=np.float64)
    if matrix.ndim == 2:
        return points @ matrix[:3, :3].T + matrix[:3, 3]
    return np.einsum('pij,pj->pi', matrix[:, :3, :3], points) + matrix[:, :3, 3]


def box_local(points: np.ndarray, centers: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Points in box coordinates (x along l, y along w, z along h), one box per point.

    Args:
        points: (P, 3).
        centers: (P, 3) box centres.
        rotations: (P, 3, 3) box -> frame rotations.

    Returns:
        (P, 3) float64 ``R^T (p - c)``.
    """
    return np.einsum('pji,pj->pi', rotations, points - centers)


def inside_boxes(points: np.ndarray, centers: np.ndarray, rotations: np.ndarray,
                 wlh: np.ndarray, margin: float) -> np.ndarray:
    """Whether each point lies in its own box enlarged by ``margin`` on every side.

    Args:
        points: (P, 3).
        centers: (P, 3).
        rotations: (P, 3, 3) box -> frame.
        wlh: (P, 3) width, length, height (m).
        margin: added to each half-size (m).

    Returns:
        (P,) bool.
    """
    local = np.abs(box_local(points, centers, rotations))
    half = wlh[:, [1, 0, 2]] / 2 + margin
    return np.all(local <= half, axis=1)


def inside_box_matrix(points: np.ndarray, boxes: EgoBoxes, margin: float) -> np.ndarray:
    """(P, B) bool: point p inside box b enlarged by ``margin`` (points (P, 3), same frame)."""
    if len(boxes) == 0 or len(points) == 0:
        return np.zeros((len(points), len(boxes)), dtype=bool)
    diff = points[:, None, :] - boxes.centers[None]  # (P, B, 3)
    local = np.abs(np.einsum('bji,pbj->pbi', boxes.rotations, diff))
    half = boxes.wlh[:, [1, 0, 2]] / 2 + margin  # (B, 3)
    return np.all(local <= half[None], axis=2)


def associate_instances(inst: np.ndarray, points: np.ndarray, boxes: EgoBoxes,
                        margin: float = ASSOCIATION_MARGIN) -> np.ndarray:
    """Box index of each point's panoptic instance, by majority vote of the instance's points.

    Args:
        inst: (P,) int64 panoptic instance ids (> 0).
        points: (P, 3) in the frame of ``boxes``.
        boxes: B boxes.
        margin: box enlargement of the vote (m).

    Returns:
        (P,) int64 box index, -1 where no point of the instance lies in any box.
    """
    if len(points) == 0 or len(boxes) == 0:
        return np.full(len(points), -1, dtype=np.int64)
    ids, group = np.unique(inst, return_inverse=True)
    pt, box = np.nonzero(inside_box_matrix(points, boxes, margin))
    votes = np.zeros((len(ids), len(boxes)), dtype=np.int64)
    np.add.at(votes, (group[pt], box), 1)
    best = np.where(votes.max(axis=1) > 0, votes.argmax(axis=1), -1)
    return best[group]


def all_boxes(info: dict[str, Any], ego_from_lidar: np.ndarray) -> EgoBoxes:
    """Every flow-class box of ``info``, valid or not, moved from its LiDAR frame into an ego
    frame (:func:`movable_boxes`, the flow writer's box reader, with all boxes marked valid)."""
    valid = np.asarray(info['valid_flag'], dtype=bool).reshape(-1)
    return movable_boxes({**info, 'valid_flag': np.ones_like(valid)}, ego_from_lidar)


def match_flow_transforms(transforms: np.ndarray, frame_of: np.ndarray, slot: int,
                          key: EgoBoxes, other: EgoBoxes,
                          tol: float = POSE_TOLERANCE) -> np.ndarray:
    """Stored flow transform of each key-frame box for one frame slot.

    The flow file's transform of a box maps its key-frame pose onto its frame-f pose (both in
    E0); it is found as the transform of the slot whose residual on that pose pair is < ``tol``.

    Args:
        transforms: (M, 4, 4) the file's ``T``.
        frame_of: (M,) stored frame index s of each transform (-1 if unused).
        slot: the stored frame index s of the offset.
        key: B key-frame boxes in E0.
        other: the same B instances' boxes at frame f, in E0.
        tol: pose tolerance.

    Returns:
        (B,) int64 index into ``transforms``, -1 where none matches.
    """
    cand = np.flatnonzero(frame_of == slot)
    if len(key) == 0 or len(cand) == 0:
        return np.full(len(key), -1, dtype=np.int64)
    t = transforms[cand].astype(np.float64)  # (C, 4, 4)
    moved = np.einsum('cij,bj->bci', t[:, :3, :3], key.centers) + t[None, :, :3, 3]
    centre_err = np.linalg.norm(moved - other.centers[:, None], axis=2)  # (B, C)
    rot = np.einsum('cij,bjk->bcik', t[:, :3, :3], key.rotations)
    rot_err = np.abs(rot - other.rotations[:, None]).max(axis=(2, 3))
    err = np.maximum(centre_err, rot_err)
    best = err.argmin(axis=1)
    ok = err[np.arange(len(key)), best] < tol
    return np.where(ok, cand[best], -1)


def key_volume(semantics_xyz: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A perfect prediction of the key frame from its Occ3D ``semantics``.

    Args:
        semantics_xyz: (X, Y, Z) uint8 Occ3D labels (17 = free).

    Returns:
        density (1, Z, Y, X, 1) float32 (1 occupied, 0 free) and semantics (1, Z, Y, X, 17)
        float32 one-hot (all zero on free voxels), the renderer's layout.
    """
    labels = torch.from_numpy(swap_x_z(semantics_xyz.astype(np.int64), dim=0).copy())[None]
    occupied = labels != FREE_LABEL
    onehot = torch.nn.functional.one_hot(labels.clamp(max=NUM_SEMANTIC_CLASSES - 1),
                                         NUM_SEMANTIC_CLASSES).float()
    onehot = onehot * occupied[..., None]
    return occupied[..., None].float(), onehot


def voxel_zyx(points: np.ndarray) -> np.ndarray:
    """(P, 3) x, y, z points (inside the range) -> (P, 3) int64 Occ3D voxel (z, y, x)."""
    idx = np.floor((points - np.asarray(GRID_LOWER)) / VOXEL_SIZE).astype(np.int64)
    idx = np.clip(idx, 0, np.asarray(GRID_SHAPE) - 1)
    return idx[:, ::-1]


def voxel_hits(density: torch.Tensor, semantics: torch.Tensor, zyx: np.ndarray,
               labels: np.ndarray) -> np.ndarray:
    """Whether each point's voxel is occupied with the point's class.

    Args:
        density: (1, Z, Y, X, 1).
        semantics: (1, Z, Y, X, K).
        zyx: (P, 3) int64 voxel indices.
        labels: (P,) int64 classes.

    Returns:
        (P,) bool.
    """
    z, y, x = (torch.from_numpy(zyx[:, i]) for i in range(3))
    occ = density[0, z, y, x, 0] > 0.5
    cls = semantics[0, z, y, x].argmax(dim=-1)
    return (occ & (cls == torch.from_numpy(labels))).numpy()


def resolve_path(path: str, data_root: str | None) -> str:
    """A stored info path as is if it exists (or is absolute), else the first existing
    ``<data_root>/<tail of path>`` (tails from the longest); the path unchanged if none exists."""
    if os.path.isabs(path) or os.path.exists(path) or not data_root:
        return path
    parts = os.path.normpath(path).split(os.sep)
    for i in range(len(parts)):
        candidate = os.path.join(data_root, *parts[i:])
        if os.path.exists(candidate):
            return candidate
    return path


def frame_index(infos: Sequence[dict[str, Any]], k: int, offset: int) -> int:
    """The dataset's render-frame index: ``k + offset`` clamped into the list, ``k`` when that
    frame belongs to another scene (``NuScenesDatasetOccpancy._neighbour``)."""
    other = min(max(k + offset, 0), len(infos) - 1)
    return other if infos[other]['scene_token'] == infos[k]['scene_token'] else k


def load_flow_file(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``flow`` (F, 11) uint8, ``T`` (M, 4, 4) float32 and the stored frame index of each
    transform (M,) int64 (-1 if no row uses it) of a flow file (read by
    :func:`~mmdet3d.formats.flow_rows.load_flow`)."""
    gt = load_flow(path)
    frame_of = np.full(len(gt.transforms), -1, dtype=np.int64)
    frame_of[gt.indices.astype(np.int64)] = gt.flow[:, FLOW_FRAME]
    return gt.flow, gt.transforms, frame_of


def measure_sample(infos: Sequence[dict[str, Any]], k: int, flow_file: str,
                   data_root: str | None = None,
                   render_frame_ids: Sequence[int] = RENDER_FRAME_IDS,
                   box_margin: float = BOX_MARGIN,
                   voxels: bool = True) -> PointRecords:
    """The per-point records of key sample ``infos[k]`` over its render frames o != 0.

    Args:
        infos: one split's infos sorted by timestamp.
        k: key sample index.
        flow_file: the key sample's flow file (``create_flow_data.py``).
        data_root: fallback root for stored paths (:func:`resolve_path`).
        render_frame_ids: render offsets (must contain 0).
        box_margin: key-frame box enlargement (m).
        voxels: also compute the renderer-voxel hits (``hit_*``; False leaves them False).

    Returns:
        the records of all counted points (see the module docstring).
    """
    render_frame_ids = [int(o) for o in render_frame_ids]
    key = infos[k]
    key_lidar2ego, key_ego2global = sensor_poses(key, 'lidar')
    key_ego_inv = np.linalg.inv(key_ego2global)
    key_boxes = all_boxes(key, key_lidar2ego)
    key_pos = {tok: i for i, tok in enumerate(key_boxes.tokens)}
    flow, transforms, frame_of = load_flow_file(flow_file)
    render_rows = remap_flow(flow, render_frame_ids, FLOW_CLASSES)
    density = semantics = None
    if voxels:
        occ = load_occ_gt(resolve_path(key['occ_path'], data_root), token=key['token'])
        density, semantics = key_volume(occ['semantics'])
    lower, upper = np.asarray(POINT_CLOUD_RANGE[:3]), np.asarray(POINT_CLOUD_RANGE[3:])
    parts = []
    for slot_index, offset in enumerate(render_frame_ids):
        if offset == 0:
            continue
        j = frame_index(infos, k, offset)
        if j == k:
            continue
        other = infos[j]
        raw = load_lidar_points(resolve_path(other['lidar_path'], data_root))[:, :3]
        with np.load(check_file(resolve_path(other['panoptic_path'], data_root),
                                'panoptic label file')) as npz:
            panoptic = npz['data'].astype(np.int64).reshape(-1)
        if len(panoptic) != len(raw):
            raise ValueError(f"{other['panoptic_path']}: {len(panoptic)} labels for "
                             f"{len(raw)} points")
        lidar2ego, ego2global = sensor_poses(other, 'lidar')
        e0_from_lidar = key_ego_inv @ ego2global @ lidar2ego  # GenerateRays' lidar2key
        labels = LIDARSEG_TO_OCC3D[panoptic // 1000]
        inst = panoptic % 1000
        in_e0 = transform_points(e0_from_lidar, raw)
        keep = (np.isin(labels, FLOW_CLASSES) & (inst > 0)
                & np.all((in_e0 > lower) & (in_e0 < upper), axis=1))
        raw, in_e0, labels, inst = raw[keep], in_e0[keep], labels[keep], inst[keep]
        frame_boxes = all_boxes(other, np.eye(4))  # frame j's LiDAR frame
        box_of = associate_instances(inst, raw.astype(np.float64), frame_boxes)
        tokens = np.array([frame_boxes.tokens[b] if b >= 0 else None for b in box_of],
                          dtype=object)
        key_of = np.array([key_pos.get(t, -1) for t in tokens], dtype=np.int64)
        present = key_of >= 0
        if not present.any():
            continue
        in_e0, labels, key_of, box_of = (in_e0[present], labels[present], key_of[present],
                                         box_of[present])
        # the instances' boxes at both times in E0 (one row per distinct instance)
        uniq, inverse = np.unique(key_of, return_inverse=True)
        frame_rows = np.array([box_of[np.flatnonzero(key_of == u)[0]] for u in uniq])
        key_sel = key_boxes.take(uniq)
        frame_sel = frame_boxes.take(frame_rows)
        frame_sel = EgoBoxes(transform_points(e0_from_lidar, frame_sel.centers),
                             e0_from_lidar[:3, :3] @ frame_sel.rotations, frame_sel.wlh,
                             frame_sel.labels, frame_sel.tokens)
        moved = np.linalg.norm(frame_sel.centers - key_sel.centers, axis=1)
        file_slot = FLOW_FILE_OFFSETS.index(offset)  # the flow file's frame index s
        t_index = match_flow_transforms(transforms, frame_of, file_slot, key_sel, frame_sel)
        has_flow = t_index >= 0
        inverse_t = np.tile(np.eye(4), (len(uniq), 1, 1))
        if has_flow.any():
            inverse_t[has_flow] = np.linalg.inv(transforms[t_index[has_flow]].astype(np.float64))
        warped = transform_points(inverse_t[inverse], in_e0)
        centers, rotations, wlh = (key_sel.centers[inverse], key_sel.rotations[inverse],
                                   key_sel.wlh[inverse])
        inside_without = inside_boxes(in_e0, centers, rotations, wlh, box_margin)
        inside_with = inside_boxes(warped, centers, rotations, wlh, box_margin)
        hit_without = hit_with = np.zeros(len(in_e0), dtype=bool)
        if voxels:
            zyx = voxel_zyx(in_e0)
            hit_without = voxel_hits(density, semantics, zyx, labels)
            rows = render_rows[render_rows[:, FLOW_FRAME] == slot_index].copy()
            rows[:, FLOW_FRAME] = 0
            # clones: with num_frames=1 apply_flow_clipped's per-frame "copy" is a view of its
            # input (expand to size 1 + reshape), which it then fills in place
            dens_f, sem_f = apply_flow_clipped(density.clone(), semantics.clone(),
                                               [torch.from_numpy(rows)], num_frames=1)
            hit_with = voxel_hits(dens_f[:, 0], sem_f[:, 0], zyx, labels)
        n = len(in_e0)
        parts.append(PointRecords(
            label=labels.astype(np.int64), offset=np.full(n, offset, dtype=np.int64),
            displacement=moved[inverse], clamped=np.full(n, j != k + offset),
            has_flow=has_flow[inverse], inside_without=inside_without, inside_with=inside_with,
            hit_without=hit_without, hit_with=hit_with))
    return PointRecords.concat(parts)


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean() * 100) if len(mask) else None


def summarize(records: PointRecords, moving_threshold: float = MOVING_THRESHOLD,
              static_threshold: float = STATIC_THRESHOLD) -> dict[str, Any]:
    """Shares (%) per group and per class.

    Groups (unclamped slots): ``moving`` (displacement > ``moving_threshold``), ``slow``
    (in between) and ``static`` (<= ``static_threshold``, the control); ``clamped``: moving points
    of dataset-clamped slots. Each group has ``all`` and ``per_class`` (Occ3D class name)
    entries: ``points``, ``no_flow_rows`` (points whose instance has no stored transform for the
    slot) and ``inside_without``, ``inside_with``, ``hit_without``, ``hit_with`` in % (None for
    no points).
    """
    def entry(sel: np.ndarray) -> dict[str, Any]:
        return dict(points=int(sel.sum()), no_flow_rows=int((sel & ~records.has_flow).sum()),
                    inside_without=_share(records.inside_without[sel]),
                    inside_with=_share(records.inside_with[sel]),
                    hit_without=_share(records.hit_without[sel]),
                    hit_with=_share(records.hit_with[sel]))

    disp, clamped = records.displacement, records.clamped
    moving = disp > moving_threshold
    static = disp <= static_threshold
    groups = {'moving': moving & ~clamped, 'slow': ~moving & ~static & ~clamped,
              'static': static & ~clamped, 'clamped': moving & clamped}
    out: dict[str, Any] = {}
    for name, sel in groups.items():
        per_class = {CLASS_NAMES[c]: entry(sel & (records.label == c))
                     for c in np.unique(records.label[sel])}
        out[name] = {'all': entry(sel), 'per_class': per_class}
    return out
