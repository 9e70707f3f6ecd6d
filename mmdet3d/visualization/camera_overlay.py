"""Occupancy in the camera images: voxels projected into the six raw images with a z-buffer.

Frames (as ``GenerateRays``): label volumes live in the key frame's LiDAR-timestamp ego frame
E0 (``info['ego2global_*']``); camera ``c`` of the sample maps to E0 by
``inv(ego2global) @ cams[c].ego2global @ cams[c].sensor2ego`` (each camera has its own ego pose,
at its own timestamp) and projects with ``cams[c].cam_intrinsic``, which is given for the raw
image size. Overlays are drawn at a reduced size with the intrinsics scaled alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from mmdet3d.datasets.transforms.utils import cam2global_matrices, check_file
from mmdet3d.structures.occ3d import POINT_CLOUD_RANGE
from mmdet3d.structures.pose import pose_matrix, rigid_inverse

from .image_panels import class_legend, grid, resize, stack, text_bar, titled
from .occ_palette import present_classes
from .rasterizer import PinholeCamera, render_faces
from .voxel_faces import exposed_faces, occupied_voxels

#: The six cameras as they are usually shown: front row left to right, back row below.
CAMERA_LAYOUT: tuple[tuple[str, ...], ...] = (
    ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT'),
    ('CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT'))
CAMERA_NAMES: tuple[str, ...] = CAMERA_LAYOUT[0] + CAMERA_LAYOUT[1]


def _check_camera_entries(info: dict, cams: Sequence[str]) -> None:
    """Raise a ``KeyError`` naming the sample and the missing camera data."""
    token = info.get('token', '?')
    if 'cams' not in info:
        raise KeyError(f'info of sample {token} has no "cams" (camera calibration); use an info '
                       'pkl of tools/create_data_bevdet.py')
    needed = ('data_path', 'cam_intrinsic', 'sensor2ego_translation', 'sensor2ego_rotation',
              'ego2global_translation', 'ego2global_rotation')
    for cam in cams:
        if cam not in info['cams']:
            raise KeyError(f'info of sample {token} lacks camera {cam}; it has '
                           f'{sorted(info["cams"])}')
        missing = [k for k in needed if k not in info['cams'][cam]]
        if missing:
            raise KeyError(f'info of sample {token}: cams[{cam}] lacks {missing}')


def load_camera_image(info: dict, cam: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB raw image of camera ``cam`` (``cams[cam]['data_path']``)."""
    _check_camera_entries(info, [cam])
    path = check_file(info['cams'][cam]['data_path'], f'image of {cam} (sample {info["token"]})')
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'))


def sample_cameras(info: dict, image_sizes: dict[str, tuple[int, int]],
                   cams: Sequence[str] = CAMERA_NAMES) -> dict[str, PinholeCamera]:
    """The sample's cameras as seen from the key LiDAR-timestamp ego frame E0.

    Args:
        info: sample info with ``ego2global_*`` (E0) and ``cams``.
        image_sizes: (width, height) of each camera's raw image (the intrinsics' image).
        cams: camera names. Defaults to the six nuScenes cameras.

    Returns:
        camera name -> :class:`PinholeCamera` of the raw image.
    """
    _check_camera_entries(info, cams)
    if 'ego2global_translation' not in info or 'ego2global_rotation' not in info:
        raise KeyError(f'info of sample {info.get("token", "?")} lacks ego2global_* (E0 pose)')
    key_ego2global = pose_matrix(info['ego2global_translation'], info['ego2global_rotation'])
    cam2key = rigid_inverse(key_ego2global) @ cam2global_matrices(info, cams)  # (N, 4, 4)
    cameras = {}
    for cam, matrix in zip(cams, cam2key):
        width, height = image_sizes[cam]
        intrinsic = np.asarray(info['cams'][cam]['cam_intrinsic'], dtype=np.float64)
        cameras[cam] = PinholeCamera(intrinsic, rigid_inverse(matrix), int(width), int(height))
    return cameras


def blend(image: np.ndarray, overlay: np.ndarray, covered: np.ndarray,
          alpha: float = 0.6) -> np.ndarray:
    """``image`` with ``overlay`` mixed in at ``alpha`` where ``covered`` (all (H, W[, 3]))."""
    out = image.astype(np.float64)
    out[covered] = (1 - alpha) * out[covered] + alpha * overlay[covered]
    return np.round(out).astype(np.uint8)


def camera_overlays(info: dict, volumes: dict[str, np.ndarray], mask: np.ndarray | None = None,
                    pc_range: Sequence[float] = POINT_CLOUD_RANGE, panel_width: int = 400,
                    alpha: float = 0.6) -> tuple[dict[str, dict[str, np.ndarray]], set[int]]:
    """Raw images and each volume's visible voxels drawn over them, per camera.

    Args:
        info: sample info (see :func:`sample_cameras`).
        volumes: layer name (e.g. 'ground truth') -> (X, Y, Z) labels (17 = free).
        mask: (X, Y, Z) visibility applied to every volume, or None. Defaults to None.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
        panel_width: width of each drawn image (height keeps the raw aspect). Defaults to 400.
        alpha: opacity of the voxel colours. Defaults to 0.6.

    Returns:
        per camera: ``{'image': raw image, <layer>: overlay}`` ((h, panel_width, 3) uint8 each),
        and the labels that appear in any overlay.
    """
    images = {cam: load_camera_image(info, cam) for cam in CAMERA_NAMES}
    cameras = sample_cameras(info, {c: (img.shape[1], img.shape[0]) for c, img in images.items()})
    faces = {name: exposed_faces(vol, occupied_voxels(vol, mask), pc_range)
             for name, vol in volumes.items()}
    panels: dict[str, dict[str, np.ndarray]] = {}
    shown: set[int] = set()
    for cam in CAMERA_NAMES:  # loop over the six cameras
        raw = images[cam]
        height = round(raw.shape[0] * panel_width / raw.shape[1])
        camera = cameras[cam].resized(panel_width, height)
        small = resize(raw, panel_width, height)
        panels[cam] = {'image': small}
        for name, layer_faces in faces.items():
            rgb, raster = render_faces(layer_faces, camera)
            panels[cam][name] = blend(small, rgb, raster.covered, alpha)
            shown.update(present_classes(layer_faces.labels[raster.face[raster.covered]]))
    return panels, shown


def camera_overlay_image(info: dict, pred: np.ndarray, gt: np.ndarray | None = None,
                         mask: np.ndarray | None = None, mask_name: str = 'camera',
                         pc_range: Sequence[float] = POINT_CLOUD_RANGE, panel_width: int = 400,
                         alpha: float = 0.6) -> np.ndarray:
    """One picture: the six raw images, the GT's voxels over them, the prediction's voxels.

    Each block shows the cameras in :data:`CAMERA_LAYOUT`; the nearest exposed voxel face wins
    each pixel, its class colour shaded by the face orientation (top faces brightest).

    Args:
        info: sample info with ``token``, ``cams`` and ``ego2global_*``.
        pred: (X, Y, Z) predicted labels. gt: (X, Y, Z) GT labels or None.
        mask: (X, Y, Z) visibility applied to GT and prediction, or None. Defaults to None.
        mask_name: name of the mask in the titles. Defaults to 'camera'.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
        panel_width: width of each camera image (pixels). Defaults to 400.
        alpha: opacity of the voxel colours. Defaults to 0.6.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    masked = '' if mask is None else f' ({mask_name} mask)'
    volumes = {} if gt is None else {f'ground truth{masked}': gt}
    volumes[f'prediction{masked}'] = pred
    panels, shown = camera_overlays(info, volumes, mask, pc_range, panel_width, alpha)
    blocks = []
    for layer in ['image', *volumes]:
        rows = [[titled(panels[cam][layer], cam, 12) for cam in row] for row in CAMERA_LAYOUT]
        blocks.append(titled(grid(rows), 'camera images' if layer == 'image' else layer, 16))
    body = stack(blocks, axis=0, gap=10)
    title = f'{info.get("scene_name", "")} / {info["token"]}'.lstrip(' /')
    return stack([text_bar(title, body.shape[1], 16), body,
                  class_legend(shown, body.shape[1])], axis=0)
