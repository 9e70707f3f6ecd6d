"""Per-frame inputs of the temporal stereo detector (spec 2.3, BEVDet4D ``prepare_inputs``).

:class:`CameraInputs` packs F frames of N cameras: images camera-major ((cam0 t, cam0 t-1,
...), ...), every transform frame-major ((t cam0, t cam1, ...), (t-1 cam0, ...), ...).
Frame 0 is the key frame t; frame f is t-f.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mmdet3d.structures.camera_inputs import CameraInputs


class TemporalInputs(NamedTuple):
    """Inputs split per frame (lists of length F, index f = frame t-f).

    Attributes:
        imgs: F x (B, N, 3, H, W).
        sensor2keyegos: F x (B, N, 4, 4) camera of frame f -> key ego (float32).
        ego2globals: F x (B, N, 4, 4).
        intrins: F x (B, N, 3, 3).
        post_rots: F x (B, N, 3, 3).
        post_trans: F x (B, N, 3).
        bda: (B, 3, 3).
        curr2adjsensors: F x ((B, N, 4, 4) or None): camera n of frame f -> camera n of frame
            f+1; None for the frames without an older neighbour.
    """

    imgs: list[Tensor]
    sensor2keyegos: list[Tensor]
    ego2globals: list[Tensor]
    intrins: list[Tensor]
    post_rots: list[Tensor]
    post_trans: list[Tensor]
    bda: Tensor
    curr2adjsensors: list[Tensor | None]


def sensor_to_key_ego(sensor2egos: Tensor, ego2globals: Tensor) -> Tensor:
    """Camera -> key ego of every frame and camera, computed in float64, returned in float32.

    ``inverse(keyego2global) @ ego2global[f, n] @ sensor2ego[f, n]`` with the key ego the ego
    pose of frame 0, camera 0 (its own timestamp; quirk 5).

    Args:
        sensor2egos: (B, F, N, 4, 4) camera -> ego at that camera's timestamp.
        ego2globals: (B, F, N, 4, 4) ego -> global at that camera's timestamp.

    Returns:
        (B, F, N, 4, 4) float32.
    """
    keyego2global = ego2globals[:, 0, 0].double()[:, None, None]  # (B, 1, 1, 4, 4)
    global2keyego = torch.inverse(keyego2global)
    return (global2keyego @ ego2globals.double() @ sensor2egos.double()).float()


def curr_to_adjacent_sensor(sensor2egos: Tensor, ego2globals: Tensor, num_pairs: int) -> Tensor:
    """Camera n of frame f -> camera n of frame f+1 (the older one), float64 math, float32 out.

    ``inverse(ego2global[f+1] @ sensor2ego[f+1]) @ ego2global[f] @ sensor2ego[f]``.

    Args:
        sensor2egos: (B, F, N, 4, 4).
        ego2globals: (B, F, N, 4, 4).
        num_pairs: number of leading frames that get a transform (F - 1 for BEVStereo4D with one
            extra reference frame).

    Returns:
        (B, num_pairs, N, 4, 4) float32.
    """
    curr = ego2globals[:, :num_pairs].double() @ sensor2egos[:, :num_pairs].double()
    adj = ego2globals[:, 1:num_pairs + 1].double() @ sensor2egos[:, 1:num_pairs + 1].double()
    return (torch.inverse(adj) @ curr).float()


def prepare_temporal_inputs(cameras: CameraInputs, num_frames: int,
                            stereo: bool = True) -> TemporalInputs:
    """Split the batched camera inputs into per-frame tensors (spec 2.3).

    Args:
        cameras: batched (leading B), with its bda: imgs (B, N*F, 3, H, W) camera-major,
            the transforms (B, F*N, ...) frame-major.
        num_frames: F (3 for OccFlowNet: t, t-1 and the stereo reference t-2).
        stereo: compute ``curr2adjsensors`` for frames 0..F-2. Defaults to True.

    Returns:
        :class:`TemporalInputs`.
    """
    imgs, sensor2egos, ego2globals = cameras.imgs, cameras.sensor2egos, cameras.ego2globals
    batch, num_views = imgs.shape[:2]
    cams = num_views // num_frames
    # (B, N*F, 3, H, W) camera-major -> (B, N, F, 3, H, W) -> F x (B, N, 3, H, W)
    imgs = imgs.view(batch, cams, num_frames, *imgs.shape[2:]).unbind(2)
    sensor2egos = sensor2egos.view(batch, num_frames, cams, 4, 4)  # (B, F*N, ...) -> (B, F, N, ...)
    ego2globals = ego2globals.view(batch, num_frames, cams, 4, 4)
    sensor2keyegos = sensor_to_key_ego(sensor2egos, ego2globals)
    curr2adj: list[Tensor | None] = [None] * num_frames
    if stereo:
        curr2adj[:num_frames - 1] = curr_to_adjacent_sensor(
            sensor2egos, ego2globals, num_frames - 1).unbind(1)
    return TemporalInputs(
        imgs=list(imgs),
        sensor2keyegos=list(sensor2keyegos.unbind(1)),
        ego2globals=list(ego2globals.unbind(1)),
        intrins=list(cameras.intrins.view(batch, num_frames, cams, 3, 3).unbind(1)),
        post_rots=list(cameras.post_rots.view(batch, num_frames, cams, 3, 3).unbind(1)),
        post_trans=list(cameras.post_trans.view(batch, num_frames, cams, 3).unbind(1)),
        bda=cameras.bda,
        curr2adjsensors=curr2adj,
    )
