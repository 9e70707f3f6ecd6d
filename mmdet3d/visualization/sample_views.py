"""Choose samples (by token or scene) and write the requested views of each one.

Views and their files under ``<out>/<scene>/``:

- ``bev``: ``<token>.png``, GT | prediction | disagreement from above (:mod:`.occ_figures`);
- ``cameras``: ``<token>_cameras.png``, raw images, GT and prediction in the six cameras
  (:mod:`.camera_overlay`, needs the sample's info);
- ``3d``: ``<token>_3d.png``, GT | prediction | disagreement from a virtual camera
  (:mod:`.voxel_view`);
- ``html``: ``<token>.html``, the interactive viewer (:mod:`.html_viewer`).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

from tqdm import tqdm

from mmdet3d.structures.occ3d import POINT_CLOUD_RANGE

from .camera_overlay import camera_overlay_image
from .html_viewer import write_occupancy_html
from .image_panels import save_png
from .occ_samples import OccSample, load_sample_volumes, write_occupancy_figures
from .voxel_view import Viewpoint, voxel_view_image

VIEWS = ('bev', 'cameras', '3d', 'html')


def select_samples(samples: Sequence[OccSample], tokens: Sequence[str] | None = None,
                   scene: str | None = None) -> list[OccSample]:
    """The samples with one of ``tokens`` (in the given order) and/or of ``scene``.

    Raises:
        KeyError: a token or the scene has no sample (the message lists what exists).
    """
    chosen = list(samples)
    if scene is not None:
        chosen = [s for s in chosen if s.scene == scene]
        if not chosen:
            scenes = sorted({s.scene for s in samples})
            raise KeyError(f'scene {scene!r} has no predicted sample; scenes: {scenes}')
    if tokens:
        by_token = {s.token: s for s in chosen}
        missing = [t for t in tokens if t not in by_token]
        if missing:
            where = f' of scene {scene}' if scene is not None else ''
            raise KeyError(f'no predicted sample{where} with token(s) {missing}; '
                           f'{len(by_token)} samples exist, e.g. {sorted(by_token)[:3]}')
        chosen = [by_token[t] for t in tokens]
    return chosen


def write_sample_views(samples: Sequence[OccSample], out_dir: str, views: Sequence[str],
                       mask: str = 'camera', shade: bool = True,
                       viewpoint: Viewpoint = Viewpoint(), panel_width: int = 400,
                       pc_range: Sequence[float] = POINT_CLOUD_RANGE,
                       dpi: int = 100) -> list[str]:
    """Write the ``views`` of every sample (progress bar over the samples).

    Args:
        samples: samples (with their ``info`` for 'cameras').
        out_dir: output root. views: subset of :data:`VIEWS`.
        mask: GT visibility mask applied to GT and prediction ('camera', 'lidar', 'none').
        shade, dpi: options of the BEV figure (see
            :func:`.occ_samples.write_occupancy_figures`).
        viewpoint: camera of the '3d' view. panel_width: camera image width of 'cameras'.
        pc_range: metric extent of the volumes. Defaults to the Occ3D range.

    Returns:
        the written paths, sample-major, views in :data:`VIEWS` order.
    """
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise ValueError(f'unknown view(s) {unknown}; choose from {VIEWS}')
    if 'cameras' in views:
        no_info = [s.token for s in samples if s.info is None]
        if no_info:
            raise ValueError(f'the cameras view needs the sample infos (--info); missing for '
                             f'{no_info[:3]}')
    written = []
    for sample in tqdm(samples, desc='samples', unit='sample'):
        stem = osp.join(out_dir, sample.scene, sample.token)
        title = f'{sample.scene} / {sample.token}'
        if 'bev' in views:
            written += write_occupancy_figures([sample], out_dir, mask, shade, pc_range,
                                               dpi)
        if not set(views) - {'bev'}:
            continue
        pred, gt, vis = load_sample_volumes(sample, mask)
        if 'cameras' in views:
            image = camera_overlay_image(sample.info, pred, gt, vis, mask, pc_range,
                                         panel_width)
            written.append(save_png(image, f'{stem}_cameras.png'))
        if '3d' in views:
            image = voxel_view_image(pred, gt, vis, title, mask, viewpoint, pc_range)
            written.append(save_png(image, f'{stem}_3d.png'))
        if 'html' in views:
            masked = '' if vis is None else f' ({mask} mask)'
            written.append(write_occupancy_html(f'{stem}.html', pred, gt, vis,
                                                f'{title}{masked}', pc_range))
    return written
