"""Draw saved occupancy predictions next to the Occ3D ground truth: BEV, cameras, 3-D, HTML, video.

    python tools/visualize_occupancy.py --pred-dir DIR (--info FILE | --gt-root DIR) --out DIR
        [--view bev cameras 3d html] [--token T ...] [--scene NAME] [--max-samples N]
        [--mask camera|lidar|none] [--no-shade] [--panel-width PX]
        [--eye X Y Z] [--target X Y Z] [--fov DEG]
    python tools/visualize_occupancy.py --pred-dir DIR --info FILE --scene NAME --video OUT.gif
        [--fps N] [--size WxH]
    python tools/visualize_occupancy.py --config CFG --checkpoint CKPT --token T [T ...]
        --pred-dir DIR --info FILE --out DIR [--view ...]

``DIR`` holds ``<scene>/<token>.npz`` files of ``tools/test.py --out DIR``. Views (default bev)
write ``<out>/<scene>/<token>.png`` (BEV), ``<token>_cameras.png`` (needs --info),
``<token>_3d.png`` and ``<token>.html``; every written path is printed. ``--video`` writes one
scene's frames in time order (needs --info). With ``--config`` and ``--checkpoint`` the
model first predicts the ``--token`` samples of ``--info`` (the config's test pipeline) into
``DIR``, as ``tools/test.py --out`` would. See docs/visualization.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet3d.visualization.occ_samples import MASKS, pair_samples  # noqa: E402
from mmdet3d.visualization.sample_views import (VIEWS, select_samples,  # noqa: E402
                                                write_sample_views)
from mmdet3d.visualization.voxel_view import Viewpoint  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    """``WxH`` -> (W, H)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'--size must be WxH, e.g. 960x720, got {text!r}') \
            from err
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f'--size must be at least 16x16, got {text!r}')
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pred-dir', required=True, help='predictions <scene>/<token>.npz')
    gt = parser.add_mutually_exclusive_group()
    gt.add_argument('--info', help='info pkl: GT (occ_path), time order, cameras and images')
    gt.add_argument('--gt-root', help='Occ3D gts folder (<gt-root>/<scene>/<token>/labels.npz)')
    parser.add_argument('--path-prefix', help='prefix of relative occ_path and image paths in '
                        '--info (default: relative to the working directory, the repo root)')
    parser.add_argument('--out', help='output folder of the views (needed unless only --video)')
    parser.add_argument('--view', nargs='+', choices=VIEWS, default=None,
                        help='views to write per sample (default: bev, none with --video)')
    parser.add_argument('--token', nargs='+', default=None, help='only these sample tokens')
    parser.add_argument('--scene', help='only the samples of this scene (needed by --video)')
    parser.add_argument('--max-samples', type=int, default=None, help='draw the first N')
    parser.add_argument('--mask', choices=MASKS, default='camera',
                        help='GT visibility mask applied to GT and prediction')
    parser.add_argument('--no-shade', action='store_true',
                        help='flat class colours (no darkening of low voxels)')
    parser.add_argument('--dpi', type=int, default=100)
    parser.add_argument('--panel-width', type=int, default=400,
                        help='width of each camera image in the cameras view (pixels)')
    default = Viewpoint()
    parser.add_argument('--eye', type=float, nargs=3, default=default.eye, metavar=('X', 'Y', 'Z'),
                        help='3-D view camera position in the ego frame (m)')
    parser.add_argument('--target', type=float, nargs=3, default=default.target,
                        metavar=('X', 'Y', 'Z'), help='3-D view point looked at (m)')
    parser.add_argument('--fov', type=float, default=default.fov_x_deg,
                        help='3-D view horizontal field of view (degrees)')
    parser.add_argument('--config', help='with --checkpoint: predict the --token samples first')
    parser.add_argument('--checkpoint', help='weights of --config (loaded as data only)')
    parser.add_argument('--video', help='write the --scene as a .gif (or .mp4 with imageio-ffmpeg)')
    parser.add_argument('--fps', type=float, default=2.0, help='video frames per second')
    parser.add_argument('--size', type=_size, default=None,
                        help='video frame size WxH (default: the natural size, about 970x710)')
    args = parser.parse_args(argv)
    if args.view is None:
        args.view = [] if args.video else ['bev']
    if args.view and not args.out:
        parser.error('--out is required to write views')
    if args.video and (args.scene is None or args.info is None):
        parser.error('--video needs --scene and --info (time order, cameras)')
    if (args.config is None) != (args.checkpoint is None):
        parser.error('--config and --checkpoint go together')
    if args.checkpoint and (args.token is None or args.info is None):
        parser.error('--checkpoint needs --token (the samples to predict) and --info')
    if 'cameras' in args.view and args.info is None:
        parser.error('--view cameras needs --info (camera calibration and image paths)')
    return args


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    if args.max_samples is not None and args.max_samples < 1:
        raise SystemExit('--max-samples must be >= 1')
    if args.checkpoint:
        from mmdet3d.analysis.sample_prediction import predict_tokens
        from mmdet3d.engine.runner_setup import load_config
        from mmdet3d.utils import register_all_modules
        register_all_modules()
        cfg = load_config(args.config, {'test_dataloader.dataset.ann_file': args.info})
        for path in predict_tokens(cfg, args.checkpoint, args.token, args.pred_dir):
            print(f'predicted {path}')
    samples = pair_samples(args.pred_dir, args.info, args.gt_root, args.path_prefix)
    samples = select_samples(samples, args.token, args.scene)[:args.max_samples]
    viewpoint = Viewpoint(tuple(args.eye), tuple(args.target), args.fov)
    paths = write_sample_views(samples, args.out, args.view, args.mask, not args.no_shade,
                               viewpoint, args.panel_width, dpi=args.dpi) \
        if args.view else []
    if args.video:
        from mmdet3d.visualization.scene_video import write_scene_video
        paths.append(write_scene_video(samples, args.video, args.fps, args.size, args.mask,
                                       viewpoint))
    for path in paths:
        print(path)
    return paths


if __name__ == '__main__':
    main()
