"""nuScenes v1.0 tables of the demo dataset: records, token chains and the JSON writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import classes as C
from .fileio import make_token, write_json
from .rigs import SensorCalib

#: Tables the devkit always loads, plus the lidarseg/panoptic indices.
TABLE_NAMES: tuple[str, ...] = (
    'category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose',
    'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map', 'lidarseg', 'panoptic',
)


def yaw_quaternion(yaw: float) -> list[float]:
    """(w, x, y, z) of a rotation by ``yaw`` rad about +z."""
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def pose_record(token: str, pose: np.ndarray, timestamp: int) -> dict:
    """ego_pose record of a level (4, 4) ego->global pose."""
    yaw = float(np.arctan2(pose[1, 0], pose[0, 0]))
    return {'token': token, 'timestamp': timestamp,
            'rotation': yaw_quaternion(yaw),
            'translation': [float(pose[0, 3]), float(pose[1, 3]), float(pose[2, 3])]}


def link_chain(records: list[dict]) -> None:
    """Set ``prev``/``next`` of records given in chain order ('' at both ends)."""
    for i, rec in enumerate(records):
        rec['prev'] = records[i - 1]['token'] if i > 0 else ''
        rec['next'] = records[i + 1]['token'] if i + 1 < len(records) else ''


class Tables:
    """Collects the records of all tables; static tables are filled on construction."""

    def __init__(self, calibs: list[SensorCalib]) -> None:
        self.records: dict[str, list[dict]] = {name: [] for name in TABLE_NAMES}
        for index, name in enumerate(C.LIDARSEG_NAMES):
            self.add('category', token=self.category_token(name), name=name,
                     description=f'{name} (synthetic demo class)', index=index)
        for name in C.ATTRIBUTE_NAMES:
            self.add('attribute', token=self.attribute_token(name), name=name,
                     description=f'{name} (synthetic demo attribute)')
        for token, level, description in C.VISIBILITY_LEVELS:
            self.add('visibility', token=token, level=level, description=description)
        self.calib_tokens: dict[str, str] = {}
        for calib in calibs:
            sensor = self.add('sensor', token=make_token('sensor', calib.channel),
                              channel=calib.channel, modality=calib.modality)
            intrinsic = [] if calib.intrinsic is None else calib.intrinsic.tolist()
            self.calib_tokens[calib.channel] = self.add(
                'calibrated_sensor', token=make_token('calibrated_sensor', calib.channel),
                sensor_token=sensor, translation=list(calib.translation),
                rotation=list(calib.rotation), camera_intrinsic=intrinsic)

    @staticmethod
    def category_token(name: str) -> str:
        return make_token('category', name)

    @staticmethod
    def attribute_token(name: str) -> str:
        return make_token('attribute', name)

    def add(self, table: str, **record: object) -> str:
        """Append a record (must hold ``token``); returns its token."""
        self.records[table].append(record)
        return str(record['token'])

    def add_maps(self, png_filename: dict[str, str]) -> None:
        """One map record per log location; ``png_filename`` maps location -> maps/<x>.png."""
        by_location: dict[str, list[str]] = {}
        for log in self.records['log']:
            by_location.setdefault(log['location'], []).append(log['token'])
        for location, log_tokens in by_location.items():
            filename = png_filename[location]
            self.add('map', token=Path(filename).stem, log_tokens=log_tokens,
                     category='semantic_prior', filename=filename)

    def write(self, table_dir: Path) -> None:
        """Write every table as ``<table_dir>/<name>.json``."""
        for name, records in self.records.items():
            write_json(table_dir / f'{name}.json', records)
