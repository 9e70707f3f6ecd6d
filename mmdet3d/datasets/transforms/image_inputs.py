"""``PrepareImageInputs``: load, augment and normalise the multi-view, multi-frame camera images.

Spec 4.3.1. Image-plane convention: pixel (u, v) with u to the right, v down, in pixels of the
source image; the augmentation maps it to ``post_rot @ (u, v) + post_tran`` in the network input.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.structures.occ_geometry import OccGeometry
from mmdet3d.structures.pose import pose_matrix

from .base import BaseTransform
from .image_resample import resize_crop
from .utils import check_file, make_rng, require, sensor_poses

IMG_MEAN = (123.675, 116.28, 103.53)
IMG_STD = (58.395, 57.12, 57.375)
_DATA_CONFIG_KEYS = ('cams', 'Ncams', 'input_size', 'resize', 'rot', 'flip', 'crop_h',
                     'resize_test')


@dataclass(frozen=True)
class ImageAug:
    """One camera's image augmentation, shared by all frames of that camera.

    Attributes:
        resize: scale factor s (float; the image size uses ``int()`` of the scaled size).
        resize_dims: (W', H') size in pixels after resizing.
        crop: (x0, y0, x1, y1) crop box in the resized image (may exceed it: zero fill).
        flip: horizontal flip after cropping.
        rotate: counter-clockwise rotation in degrees about the crop centre.
    """
    resize: float
    resize_dims: tuple[int, int]
    crop: tuple[int, int, int, int]
    flip: bool
    rotate: float


def aug_affine(aug: ImageAug) -> tuple[np.ndarray, np.ndarray]:
    """2-D affine of an augmentation: augmented pixel = ``post_rot @ (u, v) + post_tran``.

    Computed in float32 in the original's order of operations (bit-exact with it).

    Returns:
        post_rot (2, 2) and post_tran (2,), float32. Uses the float ``resize`` while the image
        uses ``int()`` sizes: a sub-pixel mismatch that is kept (spec 4.3.1 step 5).
    """
    f32 = np.float32
    crop_w, crop_h = aug.crop[2] - aug.crop[0], aug.crop[3] - aug.crop[1]
    post_rot = np.eye(2, dtype=f32) * f32(aug.resize)
    post_tran = -np.asarray(aug.crop[:2], dtype=f32)
    if aug.flip:
        flip = np.diag([-1, 1]).astype(f32)
        post_rot = flip @ post_rot
        post_tran = flip @ post_tran + np.array([crop_w, 0], dtype=f32)
    angle = aug.rotate / 180 * math.pi
    rot = np.array([[math.cos(angle), math.sin(angle)],
                    [-math.sin(angle), math.cos(angle)]]).astype(f32)
    centre = np.array([crop_w, crop_h], dtype=f32) / f32(2)
    post_rot = rot @ post_rot
    post_tran = rot @ post_tran + (rot @ -centre + centre)
    return post_rot, post_tran


def augment_image(img: np.ndarray | Image.Image, aug: ImageAug) -> np.ndarray:
    """PIL resize (default BICUBIC), crop (zero fill), horizontal flip, rotate (NEAREST, centre).

    The resize is computed only inside the crop window (:func:`resize_crop`, byte-identical to
    PIL's resize + crop + flip); the rotation is PIL's.

    Returns:
        (H, W, 3) uint8 with (W, H) the crop size.
    """
    out = resize_crop(np.asarray(img), aug.resize_dims, aug.crop, aug.flip)
    if aug.rotate % 360 == 0:  # PIL returns a copy
        return out
    return np.asarray(Image.fromarray(out).rotate(aug.rotate))


def normalization_table() -> np.ndarray:
    """(3, 256) float32: the normalised value of each uint8 level in each output channel.

    Entry [c, v] is ``(v - mean[c]) * (1 / std[c])`` in float32, the original's arithmetic per
    pixel, so looking levels up gives the same bits as computing them.
    """
    levels = np.arange(256, dtype=np.float32)[None]  # (1, 256)
    mean = np.asarray(IMG_MEAN, dtype=np.float32)[:, None]  # (3, 1)
    stdinv = (1 / np.asarray(IMG_STD, dtype=np.float64)).astype(np.float32)[:, None]
    return (levels - mean) * stdinv  # (3, 256)


def normalize_image(img: np.ndarray, swap_rb: bool = True,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Normalise an RGB uint8 image (H, W, 3) to a (3, H, W) float32 tensor.

    Output channel c holds ``(x - mean[c]) / std[c]`` of input channel c (2 - c with
    ``swap_rb``), computed by a table lookup per uint8 level (:func:`normalization_table`).

    Args:
        img: (H, W, 3) RGB uint8 array.
        swap_rb: quirk 15 (spec 10.1): the original swaps channels 0 and 2 before subtracting
            the RGB mean, so channel 0 holds (B - 123.675) / 58.395. Keep True for the
            pretrained backbone. Defaults to True.
        out: (3, H, W) float32 tensor to write into (e.g. a slice of the batch of views);
            None allocates one. Defaults to None.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'normalize_image needs an (H, W, 3) uint8 image, got {img.dtype} '
                         f'{img.shape}')
    if out is None:
        out = torch.empty((3, *img.shape[:2]), dtype=torch.float32)
    target = out.numpy()
    for c in range(3):
        source = 2 - c if swap_rb else c
        np.take(_NORMALIZATION_TABLE[c], img[..., source], out=target[c])
    return out


_NORMALIZATION_TABLE = normalization_table()


@TRANSFORMS.register_module()
class PrepareImageInputs(BaseTransform):
    """Load the 6 camera images of the key frame and the adjacent frames, augment, normalise.

    One augmentation is sampled per camera (train mode) and applied to that camera's images of
    all frames; the key frame's intrinsics and augmentation are repeated for adjacent frames.
    The original's unused ``canvas`` (augmented uint8 images) is not produced.

    Required Keys:
        - curr (dict): key-frame info; ``cams[name]`` with ``data_path``, ``cam_intrinsic``,
          ``sensor2ego_*``, ``ego2global_*`` (the camera's own ego pose).
        - adjacent (list[dict]): infos of t-1, t-2 (only if ``sequential``).

    Added Keys:
        - img_inputs (:class:`CameraInputs`): with N cameras and F frames,
          imgs (N*F, 3, H, W) float32 camera-major ([cam0: t, t-1, t-2, cam1: ...]);
          sensor2egos (N*F, 4, 4) camera -> camera-ego, frame-major ([t: cam0..], [t-1: ..]);
          ego2globals (N*F, 4, 4) camera-ego -> global, frame-major; intrins (N*F, 3, 3);
          post_rots (N*F, 3, 3); post_trans (N*F, 3) (third entry 0). All float32; no bda yet.
        - cam_names (list[str]): camera order.

    Args:
        data_config: ``cams`` (list of names), ``Ncams``, ``input_size`` (H, W), ``resize``
            (lo, hi) added to W/W_src, ``rot`` (lo, hi) degrees, ``flip`` (bool), ``crop_h``
            (lo, hi) fraction, ``resize_test`` (added to the test scale).
        is_train: sample random augmentations (else the fixed test-mode values).
        geometry: the scene geometry (an ``OccGeometry`` or its config dict). Used: its
            ``lidar_key_ego`` (quirk 5 fix): if True, every ``sensor2ego`` becomes camera ->
            key-frame LiDAR ego and every ``ego2global`` the key LiDAR ego pose, so that the
            model's key ego (frame 0, camera 0) is the LiDAR-timestamp ego frame of the rays
            and Occ3D GT; camera-to-camera transforms are unchanged. Needs
            ``curr['ego2global_*']``. False: the original's key ego = CAM_FRONT_LEFT's ego pose.
        sequential: also load the ``adjacent`` frames. Defaults to True.
        swap_rb: keep the original R/B channel swap of the normalisation (quirk 15).
            Defaults to True.
        seed: None draws from numpy's global random state (seeded per dataloader worker);
            an int gives a private, reproducible generator (every dataloader worker then
            repeats the same draws: use None for training). Defaults to None.
    """

    def __init__(self,
                 data_config: dict,
                 is_train: bool,
                 geometry: OccGeometry | Mapping[str, Any],
                 sequential: bool = True,
                 swap_rb: bool = True,
                 seed: int | None = None) -> None:
        missing = [k for k in _DATA_CONFIG_KEYS if k not in data_config]
        if missing:
            raise KeyError(f'PrepareImageInputs: data_config lacks {missing}')
        self.data_config = data_config
        self.is_train = is_train
        self.sequential = sequential
        self.swap_rb = swap_rb
        self.geometry = OccGeometry.build(geometry)
        self.lidar_key_ego = self.geometry.lidar_key_ego
        self.rng = make_rng(seed)

    def choose_cams(self) -> list[str]:
        """All cameras, or (train mode with ``Ncams`` < #cams) a random subset."""
        cams = list(self.data_config['cams'])
        n_cams = self.data_config['Ncams']
        if self.is_train and n_cams < len(cams):
            return [str(c) for c in self.rng.choice(cams, n_cams, replace=False)]
        return cams

    def sample_augmentation(self, height: int, width: int) -> ImageAug:
        """Draw (train) or fix (test) the augmentation of one source image of size (H, W)."""
        cfg = self.data_config
        out_h, out_w = cfg['input_size']
        if self.is_train:
            resize = out_w / width + self.rng.uniform(*cfg['resize'])
        else:
            resize = max(out_h / height, out_w / width) + cfg['resize_test']
        new_w, new_h = int(width * resize), int(height * resize)
        if self.is_train:
            crop_h = int((1 - self.rng.uniform(*cfg['crop_h'])) * new_h) - out_h
            crop_w = int(self.rng.uniform(0, max(0, new_w - out_w)))
            flip = bool(cfg['flip']) and bool(self.rng.random() < 0.5)
            rotate = float(self.rng.uniform(*cfg['rot']))
        else:
            crop_h = int((1 - float(np.mean(cfg['crop_h']))) * new_h) - out_h
            crop_w = int(max(0, new_w - out_w) / 2)
            flip, rotate = False, 0.0
        return ImageAug(float(resize), (new_w, new_h),
                        (crop_w, crop_h, crop_w + out_w, crop_h + out_h), flip, rotate)

    def _load(self, info: dict, cam: str) -> np.ndarray:
        """The camera's image as (H, W, 3) RGB uint8."""
        if cam not in info.get('cams', {}):
            raise KeyError(f'PrepareImageInputs: camera {cam!r} missing in info cams')
        path = info['cams'][cam]['data_path']
        with Image.open(check_file(path, f'image of {cam}')) as img:
            return np.asarray(img if img.mode == 'RGB' else img.convert('RGB'))

    def _frame_poses(self, info: dict, cams: list[str], key_lidar_ego: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4, 4) sensor2egos and ego2globals of one frame (float64)."""
        poses = [sensor_poses(info['cams'][cam], 'sensor') for cam in cams]
        sensor2egos = np.stack([p[0] for p in poses])
        ego2globals = np.stack([p[1] for p in poses])
        if key_lidar_ego is not None:
            sensor2egos = np.linalg.inv(key_lidar_ego) @ ego2globals @ sensor2egos
            ego2globals = np.broadcast_to(key_lidar_ego, ego2globals.shape)
        return sensor2egos, ego2globals

    def transform(self, results: dict) -> dict:
        curr = require(results, 'curr', 'PrepareImageInputs')
        frames = [curr]
        if self.sequential:
            frames += list(require(results, 'adjacent', 'PrepareImageInputs'))
        cams = self.choose_cams()
        n_frames = len(frames)
        out_h, out_w = self.data_config['input_size']
        # camera-major, then frames: view cam * n_frames + f (key frame first)
        imgs = torch.empty((len(cams) * n_frames, 3, out_h, out_w), dtype=torch.float32)
        intrins, post_rots, post_trans = [], [], []
        for i, cam in enumerate(cams):
            img = self._load(curr, cam)
            aug = self.sample_augmentation(*img.shape[:2])
            post_rot, post_tran = aug_affine(aug)
            post_rots.append(post_rot)
            post_trans.append(post_tran)
            intrins.append(np.asarray(curr['cams'][cam]['cam_intrinsic'], dtype=np.float64))
            normalize_image(augment_image(img, aug), self.swap_rb, out=imgs[i * n_frames])
            for f, adj in enumerate(frames[1:], start=1):
                normalize_image(augment_image(self._load(adj, cam), aug), self.swap_rb,
                                out=imgs[i * n_frames + f])
        key_lidar_ego = None
        if self.lidar_key_ego:
            key_lidar_ego = pose_matrix(curr['ego2global_translation'],
                                        curr['ego2global_rotation'])
        poses = [self._frame_poses(info, cams, key_lidar_ego) for info in frames]
        rot3 = np.tile(np.eye(3, dtype=np.float32), (len(cams), 1, 1))
        rot3[:, :2, :2] = np.stack(post_rots)
        tran3 = np.zeros((len(cams), 3), dtype=np.float32)
        tran3[:, :2] = np.stack(post_trans)

        def frame_major(per_cam: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([per_cam] * n_frames).astype(np.float32))

        results['img_inputs'] = CameraInputs(
            imgs=imgs,
            sensor2egos=torch.from_numpy(np.concatenate([p[0] for p in poses]).astype(np.float32)),
            ego2globals=torch.from_numpy(np.concatenate([p[1] for p in poses]).astype(np.float32)),
            intrins=frame_major(np.stack(intrins)),
            post_rots=frame_major(rot3),
            post_trans=frame_major(tran3),
        )
        results['cam_names'] = cams
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(is_train={self.is_train}, sequential={self.sequential}, '
                f'swap_rb={self.swap_rb}, lidar_key_ego={self.lidar_key_ego})')
