"""Write an info pkl holding some scenes of another (e.g. one scene to over-fit on).

    python tools/misc/subset_infos.py IN.pkl OUT.pkl [--scenes NAME ...] [--first-scene]
        [--max-samples N]

Keeps the infos of the named scenes (``--first-scene``: the scene of the earliest sample) in
timestamp order, at most ``--max-samples`` of them, and the input's metadata. Used by the
over-fit recipe of docs/training_diagnostics.md (train and val on the same few samples).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmdet3d.formats.info_pkl import dump_infos, load_infos  # noqa: E402


def subset_infos(infos: list[dict], scenes: list[str] | None, first_scene: bool,
                 max_samples: int | None) -> list[dict]:
    """The infos of ``scenes`` (or of the earliest sample's scene), sorted by timestamp."""
    ordered = sorted(infos, key=lambda info: info['timestamp'])
    if first_scene:
        if not ordered:
            raise ValueError('no infos to choose a scene from')
        scenes = [ordered[0]['scene_name']]
    if scenes:
        known = {info['scene_name'] for info in ordered}
        missing = sorted(set(scenes) - known)
        if missing:
            raise ValueError(f'scenes {missing} not found; the file holds {sorted(known)}')
        ordered = [info for info in ordered if info['scene_name'] in scenes]
    return ordered[:max_samples]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('infos', help='input info pkl')
    parser.add_argument('out', help='output info pkl')
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument('--scenes', nargs='+', help='scene names to keep')
    chosen.add_argument('--first-scene', action='store_true',
                        help="keep the earliest sample's scene")
    parser.add_argument('--max-samples', type=int, default=None, help='keep at most N samples')
    args = parser.parse_args(argv)
    infos, metadata = load_infos(args.infos, required_keys=('scene_name', 'timestamp'))
    kept = subset_infos(infos, args.scenes, args.first_scene, args.max_samples)
    dump_infos(args.out, kept, metadata.get('version', ''))
    print(f'{len(kept)} samples of {sorted({i["scene_name"] for i in kept})} -> {args.out}')
    return kept


if __name__ == '__main__':
    main()
