"""The paper's table in miniature: group IoUs, seed summaries and the spread verdicts by hand."""
from __future__ import annotations

import numpy as np

from mmdet3d.analysis.variant_table import (class_group_ious, format_table,
                                            present_class_ious, ranking_statements,
                                            summarize_runs)

CAR, PEDESTRIAN, ROAD, MANMADE, FREE = 4, 7, 11, 15, 17


def test_class_group_ious_average_the_present_classes_of_each_group():
    hist = np.zeros((18, 18), np.int64)
    hist[CAR, CAR], hist[CAR, FREE] = 1, 1  # car IoU 1/2
    hist[ROAD, ROAD] = 3  # road IoU 1
    hist[MANMADE, MANMADE], hist[FREE, MANMADE] = 1, 3  # manmade IoU 1/4
    hist[FREE, PEDESTRIAN] = 2  # predicted, never in the GT: not present, not averaged
    groups = class_group_ious(hist, dynamic_classes=[CAR, PEDESTRIAN])
    assert groups == dict(dynamic=50.0, static=62.5)
    assert class_group_ious(hist, dynamic_classes=[1])['dynamic'] is None
    assert present_class_ious(hist) == dict(car=50.0, driveable_surface=100.0, manmade=25.0)


def test_summaries_and_the_spread_verdicts():
    runs = [dict(variant='2d', seed=s, miou=m, ray_iou=r, dynamic=None, static=m)
            for s, m, r in ((0, 10.0, 5.0), (1, 12.0, 6.0), (2, 11.0, 7.0))]
    runs += [dict(variant='2d_flow', seed=s, miou=m, ray_iou=r, dynamic=1.0, static=m)
             for s, m, r in ((0, 15.0, 6.0), (1, 14.0, 6.5), (2, 16.0, 6.0))]
    summary = summarize_runs(runs)
    assert summary['2d']['miou'] == dict(mean=11.0, min=10.0, max=12.0, n=3)
    assert 'dynamic' not in summary['2d'] and summary['2d_flow']['dynamic']['mean'] == 1.0
    # mIoU: step +4 against a spread of 2 -> beyond; RayIoU: +0.17 against 2 -> within
    assert ranking_statements(summary) == [
        '2d -> 2d_flow: mIoU +4.00 (beyond the seed spread 2.00)']
    assert ranking_statements(summary, 'ray_iou') == [
        '2d -> 2d_flow: RayIoU +0.17 (within the seed spread 2.00)']
    table = format_table(summary)
    assert '| 2d | 3 | 11.00 (10.00-12.00) | 6.00 (5.00-7.00) | n/a | 11.00 (10.00-12.00) |' \
        in table
