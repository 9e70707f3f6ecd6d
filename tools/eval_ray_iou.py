"""Score saved occupancy predictions with SparseOcc's RayIoU against the Occ3D ground truth.

    python tools/eval_ray_iou.py --pred-dir DIR --ann-file INFO_PKL [--data-root R]

``DIR`` holds the ``<scene>/<token>.npz`` files (key ``semantics``) of ``tools/test.py --out
DIR``; the info pkl gives each sample's GT folder (``occ_path``) and the keyframe poses of its
scene (the ray origins). Predictions of samples outside the pkl are ignored. Prints the per-class
RayIoU@1/2/4 table and, as the last line, ``RayIoU: x.xx``; the numbers equal those of
``tools/test.py --eval RayIoU`` on the same predictions.
"""
from __future__ import annotations

import argparse
import os
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet3d.evaluation.metrics.ray_iou_metric import RayIoUMetric  # noqa: E402
from mmdet3d.formats.occ_predictions import load_prediction  # noqa: E402
from mmdet3d.visualization.occ_samples import pair_samples  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pred-dir', required=True, help='predictions <scene>/<token>.npz')
    parser.add_argument('--ann-file', required=True,
                        help='info pkl of the split: occ_path and keyframe poses per sample')
    parser.add_argument('--data-root', '--path-prefix', dest='path_prefix',
                        help='prefix of relative occ_path values in --ann-file (default: '
                        'relative to the working directory, the repository root)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    samples = pair_samples(args.pred_dir, args.ann_file, path_prefix=args.path_prefix)
    metric = RayIoUMetric(args.ann_file)
    for sample in tqdm(samples, desc='RayIoU', unit='sample'):
        metric.process(None, [dict(pred_occ=load_prediction(sample.pred_path),
                                   sample_idx=sample.token, occ_path=sample.occ_path)])
    metrics = metric.compute_metrics(metric.results)
    print(f'RayIoU: {metrics["RayIoU"]:.2f}')
    return metrics


if __name__ == '__main__':
    main()
