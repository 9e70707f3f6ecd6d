"""Class tables of the demo world: nuScenes-lidarseg categories, Occ3D classes and colours."""
from __future__ import annotations

import numpy as np

#: The 32 nuScenes-lidarseg categories in ``category.index`` order (devkit colormap order).
LIDARSEG_NAMES: tuple[str, ...] = (
    'noise', 'animal', 'human.pedestrian.adult', 'human.pedestrian.child',
    'human.pedestrian.construction_worker', 'human.pedestrian.personal_mobility',
    'human.pedestrian.police_officer', 'human.pedestrian.stroller',
    'human.pedestrian.wheelchair', 'movable_object.barrier', 'movable_object.debris',
    'movable_object.pushable_pullable', 'movable_object.trafficcone',
    'static_object.bicycle_rack', 'vehicle.bicycle', 'vehicle.bus.bendy', 'vehicle.bus.rigid',
    'vehicle.car', 'vehicle.construction', 'vehicle.emergency.ambulance',
    'vehicle.emergency.police', 'vehicle.motorcycle', 'vehicle.trailer', 'vehicle.truck',
    'flat.driveable_surface', 'flat.other', 'flat.sidewalk', 'flat.terrain', 'static.manmade',
    'static.other', 'static.vegetation', 'vehicle.ego',
)
LIDARSEG_INDEX: dict[str, int] = {name: i for i, name in enumerate(LIDARSEG_NAMES)}

# lidarseg indices used by the demo world.
PEDESTRIAN = LIDARSEG_INDEX['human.pedestrian.adult']
BARRIER = LIDARSEG_INDEX['movable_object.barrier']
TRAFFIC_CONE = LIDARSEG_INDEX['movable_object.trafficcone']
BICYCLE = LIDARSEG_INDEX['vehicle.bicycle']
BUS = LIDARSEG_INDEX['vehicle.bus.rigid']
CAR = LIDARSEG_INDEX['vehicle.car']
TRUCK = LIDARSEG_INDEX['vehicle.truck']
DRIVEABLE = LIDARSEG_INDEX['flat.driveable_surface']
OTHER_FLAT = LIDARSEG_INDEX['flat.other']
SIDEWALK = LIDARSEG_INDEX['flat.sidewalk']
TERRAIN = LIDARSEG_INDEX['flat.terrain']
MANMADE = LIDARSEG_INDEX['static.manmade']
VEGETATION = LIDARSEG_INDEX['static.vegetation']

#: First lidarseg index of the "stuff" classes (instance id 0 in panoptic labels).
STUFF_START = 24

#: Base RGB colour (uint8) per lidarseg index used by the demo world; one colour per class.
CLASS_COLORS: dict[int, tuple[int, int, int]] = {
    DRIVEABLE: (100, 100, 106),
    OTHER_FLAT: (150, 80, 180),
    SIDEWALK: (240, 170, 210),
    TERRAIN: (170, 200, 70),
    MANMADE: (205, 115, 70),
    VEGETATION: (25, 130, 45),
    CAR: (40, 70, 230),
    TRUCK: (0, 190, 200),
    BUS: (250, 215, 0),
    PEDESTRIAN: (230, 25, 40),
    BICYCLE: (210, 30, 230),
    BARRIER: (245, 245, 245),
    TRAFFIC_CONE: (255, 120, 0),
}


def color_table() -> np.ndarray:
    """(32, 3) float64 RGB in [0, 255] per lidarseg index; unused classes are black."""
    table = np.zeros((len(LIDARSEG_NAMES), 3), dtype=np.float64)
    for idx, rgb in CLASS_COLORS.items():
        table[idx] = rgb
    return table


def voxel_priority() -> np.ndarray:
    """(32,) int32 voxelisation priority per lidarseg index; the higher one wins a shared voxel.

    Things 3, vegetation/manmade 2, flat classes 1, unused 0.
    """
    prio = np.zeros(len(LIDARSEG_NAMES), dtype=np.int32)
    prio[[DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN]] = 1
    prio[[MANMADE, VEGETATION]] = 2
    prio[[PEDESTRIAN, BARRIER, TRAFFIC_CONE, BICYCLE, BUS, CAR, TRUCK]] = 3
    return prio


#: Attribute names (the real nuScenes set).
ATTRIBUTE_NAMES: tuple[str, ...] = (
    'vehicle.moving', 'vehicle.parked', 'vehicle.stopped', 'pedestrian.moving',
    'pedestrian.standing', 'pedestrian.sitting_lying_down', 'cycle.with_rider',
    'cycle.without_rider',
)

#: Visibility levels, tokens '1'..'4' as in nuScenes.
VISIBILITY_LEVELS: tuple[tuple[str, str, str], ...] = (
    ('1', 'v0-40', 'visibility of whole object is between 0 and 40%'),
    ('2', 'v40-60', 'visibility of whole object is between 40 and 60%'),
    ('3', 'v60-80', 'visibility of whole object is between 60 and 80%'),
    ('4', 'v80-100', 'visibility of whole object is between 80 and 100%'),
)
