"""The Occ3D-nuScenes grid and label set, defined once for data tools, model, metric and figures.

Grid (spec 0.1): range [-40, -40, -1, 40, 40, 5.4] m in the keyframe's ego frame, voxel 0.4 m,
shape (200, 200, 16) indexed [x, y, z]. Labels (spec 0.3): 0-16 semantic classes, 17 free.

Occupancy-flow rows (spec 5.2) are (F, 11) uint8: source voxel (z, y, x) | target voxel
(z, y, x) | floor voxel (z, y, x, unused by training) | Occ3D class | frame index.
"""
from __future__ import annotations

import numpy as np

#: Occ3D class names by label; the last one, 17, is free space.
CLASS_NAMES: tuple[str, ...] = (
    'others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle',
    'pedestrian', 'traffic_cone', 'trailer', 'truck', 'driveable_surface', 'other_flat',
    'sidewalk', 'terrain', 'manmade', 'vegetation', 'free',
)
#: Number of labels, free included.
NUM_CLASSES = len(CLASS_NAMES)
#: Label of free (empty) voxels; also the number of semantic classes.
FREE_LABEL = NUM_CLASSES - 1
NUM_SEMANTIC_CLASSES = FREE_LABEL

#: (x_min, y_min, z_min, x_max, y_max, z_max) in metres.
POINT_CLOUD_RANGE: tuple[float, ...] = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
GRID_LOWER: tuple[float, ...] = POINT_CLOUD_RANGE[:3]
VOXEL_SIZE = 0.4
#: Voxels along x, y, z.
GRID_SHAPE: tuple[int, int, int] = (200, 200, 16)

#: nuScenes-lidarseg category index (0..31) -> Occ3D label (spec 4.3.5, OccFlowNet's table).
#: Unlike the devkit's mapping, personal_mobility (5) maps to pedestrian (7); noise and every
#: ignored category map to 0 (others).
LIDARSEG_TO_OCC3D = np.array(
    [0, 0, 7, 7, 7, 7, 7, 0, 0, 1, 0, 0, 8, 0, 2, 3, 3, 4, 5, 0, 0, 6, 9, 10, 11, 12, 13, 14, 15,
     0, 16, 0], dtype=np.int64)
LIDARSEG_TO_OCC3D.setflags(write=False)

#: Detection class order of the infos' ``gt_names`` and each one's Occ3D label.
DETECTION_CLASSES: tuple[str, ...] = (
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
    'pedestrian', 'traffic_cone')
DETECTION_TO_OCC3D: tuple[int, ...] = (4, 10, 5, 3, 9, 1, 6, 2, 7, 8)

#: Occ3D labels of the movable classes whose voxels get occupancy-flow rows.
FLOW_CLASSES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 9, 10)
#: Keyframe offset of each stored flow frame index s = 0..5.
FLOW_FILE_OFFSETS: tuple[int, ...] = (-3, -2, -1, 1, 2, 3)
#: Columns of a flow row.
FLOW_SRC = slice(0, 3)
FLOW_TGT = slice(3, 6)
FLOW_FLOOR = slice(6, 9)
FLOW_CLASS = 9
FLOW_FRAME = 10
FLOW_ROW_WIDTH = 11
