"""A scene as a video: one frame per sample in time order (camera overlay + 3-D view).

Frames are written with imageio: GIF through Pillow (no other dependency), MP4 (H.264) through
``imageio-ffmpeg`` when it is installed.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from mmdet3d.structures.occ3d import POINT_CLOUD_RANGE
from mmdet3d.utils.file_io import atomic_write_bytes

from .camera_overlay import CAMERA_LAYOUT, camera_overlays
from .image_panels import fit, grid, stack, text_bar, titled
from .occ_samples import OccSample, load_sample_volumes
from .voxel_view import Viewpoint, voxel_view_image

VIDEO_FORMATS = ('.gif', '.mp4')


def scene_frame(sample: OccSample, mask: str = 'camera', viewpoint: Viewpoint = Viewpoint(),
                pc_range: Sequence[float] = POINT_CLOUD_RANGE, panel_width: int = 320
                ) -> np.ndarray:
    """One frame: the prediction over the six camera images, above the 3-D view.

    The 3-D view is GT | prediction | disagreement when the sample has a GT (else the
    prediction alone); ``mask`` applies to every panel.

    Args:
        sample: a sample with its ``info`` (camera calibration and images).
        mask: 'camera', 'lidar' or 'none'. Defaults to 'camera'.
        viewpoint: the 3-D view's camera. Defaults to behind and above the ego vehicle.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.
        panel_width: width of each camera image (pixels). Defaults to 320.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    if sample.info is None:
        raise ValueError(f'sample {sample.token} has no info: the camera overlay needs --info')
    pred, gt, vis = load_sample_volumes(sample, mask)
    masked = '' if vis is None else f' ({mask} mask)'
    panels, _ = camera_overlays(sample.info, {'prediction': pred}, vis, pc_range, panel_width)
    cameras = titled(grid([[panels[cam]['prediction'] for cam in row]
                           for row in CAMERA_LAYOUT]), f'prediction in the cameras{masked}')
    panel_size = ((cameras.shape[1] - 8) // 3, round((cameras.shape[1] - 8) / 3 * 0.62))
    view = voxel_view_image(pred, gt, vis, mask_name=mask, viewpoint=viewpoint,
                            pc_range=pc_range, panel_size=panel_size)
    title = text_bar(f'{sample.scene} / {sample.token}', cameras.shape[1], 16)
    return stack([title, cameras, view], axis=0)


def write_video(path: str, frames: Iterable[np.ndarray], fps: float = 2.0,
                size: tuple[int, int] | None = None) -> str:
    """Write frames as a GIF or MP4 (by the extension of ``path``), atomically.

    Args:
        path: output file, ``.gif`` or ``.mp4``.
        frames: (H, W, 3) uint8 images; all are fitted to the size of the first (or ``size``).
        fps: frames per second. Defaults to 2.
        size: (width, height) of the video; None: the first frame's. Defaults to None.

    Returns:
        ``path``.
    """
    import imageio.v3 as iio

    ext = osp.splitext(path)[1].lower()
    if ext not in VIDEO_FORMATS:
        raise ValueError(f'video {path}: the extension must be one of {VIDEO_FORMATS}')
    if fps <= 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    if ext == '.mp4':
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as err:
            raise ImportError(f'writing {path} needs imageio-ffmpeg (pip install -r '
                              'requirements/optional.txt); or write a .gif') from err
    fitted = []
    for frame in frames:
        if size is None:
            size = (frame.shape[1], frame.shape[0])
        width, height = size
        if ext == '.mp4':  # H.264 with yuv420p needs even sizes
            width, height = width + width % 2, height + height % 2
        fitted.append(fit(frame, width, height))
    if not fitted:
        raise ValueError(f'video {path}: no frames')
    options = dict(duration=1000.0 / fps, loop=0) if ext == '.gif' else \
        dict(fps=fps, macro_block_size=2)  # sizes made even above, not padded to 16
    # encoded in memory, then written through a temporary file and a rename: never half-written
    atomic_write_bytes(path, iio.imwrite('<bytes>', np.stack(fitted), extension=ext, **options))
    return path


def write_scene_video(samples: Sequence[OccSample], path: str, fps: float = 2.0,
                      size: tuple[int, int] | None = None, mask: str = 'camera',
                      viewpoint: Viewpoint = Viewpoint(),
                      pc_range: Sequence[float] = POINT_CLOUD_RANGE) -> str:
    """Write the :func:`scene_frame` of each sample (in the given order) as a video.

    Args:
        samples: one scene's samples in time order (e.g. :func:`.occ_samples.pair_samples`
            with an info file, filtered by scene).
        path: ``.gif`` or ``.mp4`` output. fps, size: see :func:`write_video`.
        mask, viewpoint, pc_range: see :func:`scene_frame`.

    Returns:
        ``path``.
    """
    frames = (scene_frame(sample, mask, viewpoint, pc_range)
              for sample in tqdm(samples, desc='video frames', unit='frame'))
    return write_video(path, frames, fps, size)
