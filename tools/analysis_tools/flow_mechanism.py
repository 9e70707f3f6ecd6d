"""What occupancy flow contributes: other frames' LiDAR points on moving objects, without/with flow.

For every key sample of a split and each render frame o != 0 (-3..3), the share of that frame's
LiDAR points on dynamic objects present at the key frame that land inside the object's key-frame
box (+0.2 m) after the ego-motion map ("without flow") and after also undoing the flow the
renderer applies ("with flow"); also the renderer-voxel form (the key frame's Occ3D GT warped by
``apply_flow_clipped``). Definition: ``mmdet3d/analysis/flow_mechanism.py``. Needs no model.

Example::

    python tools/analysis_tools/flow_mechanism.py \\
        --info data/demo/bevdetv2-nuscenes-mini_infos_val.pkl --data-root data/demo \\
        --flow-root data/demo/flow --json work_dirs/flow_mechanism_val.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmdet3d.analysis import flow_mechanism as fm
from mmdet3d.formats.flow_rows import flow_path
from mmdet3d.formats.info_pkl import load_infos
from mmdet3d.utils.file_io import atomic_open

INFO_KEYS = ('token', 'timestamp', 'scene_name', 'scene_token', 'lidar_path', 'panoptic_path',
             'occ_path', 'lidar2ego_translation', 'lidar2ego_rotation', 'ego2global_translation',
             'ego2global_rotation', 'gt_boxes', 'gt_names', 'gt_instance_tokens', 'valid_flag')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--info', required=True, help='info pkl of one split')
    parser.add_argument('--data-root', default=None,
                        help='fallback root for stored relative paths that do not exist')
    parser.add_argument('--flow-root', default='data/flow', help='create_flow_data.py output')
    parser.add_argument('--max-samples', type=int, default=None,
                        help='first N key samples (timestamp order)')
    parser.add_argument('--render-frame-ids', type=int, nargs='+',
                        default=list(fm.RENDER_FRAME_IDS))
    parser.add_argument('--moving-threshold', type=float, default=fm.MOVING_THRESHOLD)
    parser.add_argument('--static-threshold', type=float, default=fm.STATIC_THRESHOLD)
    parser.add_argument('--box-margin', type=float, default=fm.BOX_MARGIN)
    parser.add_argument('--no-voxels', action='store_true',
                        help='skip the renderer-voxel form (faster)')
    parser.add_argument('--json', default=None, help='write the summary here')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def _pct(value: float | None) -> str:
    return '-' if value is None else f'{value:.1f}'


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table (one row per group x class, ``all`` first)."""
    head = (f"{'group':<8} {'class':<12} {'points':>8} {'no rows':>8} {'box w/o %':>10} "
            f"{'box with %':>10} {'vox w/o %':>10} {'vox with %':>10}")
    lines = [head, '-' * len(head)]
    for group, data in summary.items():
        for name, e in [('all', data['all'])] + sorted(data['per_class'].items()):
            lines.append(f"{group:<8} {name:<12} {e['points']:>8} {e['no_flow_rows']:>8} "
                         f"{_pct(e['inside_without']):>10} {_pct(e['inside_with']):>10} "
                         f"{_pct(e['hit_without']):>10} {_pct(e['hit_with']):>10}")
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    infos = sorted(load_infos(args.info, required_keys=INFO_KEYS)[0],
                   key=lambda info: info['timestamp'])
    count = len(infos) if args.max_samples is None else min(args.max_samples, len(infos))
    parts = []
    for k in tqdm(range(count), desc='flow mechanism', unit='sample',
                  disable=args.no_progress):
        parts.append(fm.measure_sample(
            infos, k, flow_path(args.flow_root, infos[k]), data_root=args.data_root,
            render_frame_ids=args.render_frame_ids, box_margin=args.box_margin,
            voxels=not args.no_voxels))
    summary = fm.summarize(fm.PointRecords.concat(parts), args.moving_threshold,
                           args.static_threshold)
    print(f'{args.info}: {count} key samples, render offsets {args.render_frame_ids}; '
          f'moving > {args.moving_threshold} m, static <= {args.static_threshold} m, '
          f'box +{args.box_margin} m')
    print('box: point inside the key-frame box without flow (ego motion only) / with the '
          "flow's box motion undone; vox: point's voxel holds its class in the key-frame Occ3D "
          "GT / in it warped by apply_flow_clipped; 'no rows': points of instances without flow")
    print(format_table(summary))
    result = dict(info=args.info, flow_root=args.flow_root, samples=count,
                  render_frame_ids=args.render_frame_ids,
                  moving_threshold=args.moving_threshold,
                  static_threshold=args.static_threshold, box_margin=args.box_margin,
                  voxels=not args.no_voxels, summary=summary)
    if args.json:
        with atomic_open(args.json) as f:
            f.write(json.dumps(result, indent=2).encode())
    return result


if __name__ == '__main__':
    main()
