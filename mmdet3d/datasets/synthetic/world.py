"""Procedural 3-D world of one demo scene: a street with buildings, trees, street furniture,
moving agents and the ego trajectory.

Everything is expressed in the scene's *world* frame (metres, z up): the main road runs along
+x through y = 0 and the ground is the plane z = ``GROUND_Z``. ``World.global_from_world`` places
the scene in the nuScenes global frame. Every object is an upright box
``[cx, cy, cz, l, w, h, yaw]`` (centre, length along the heading, width, height, heading in rad).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import classes as C

#: World z of the ground plane; the ego frame origin sits at z = 0, so the ground lies in the
#: middle of the lowest Occ3D voxel layer (z in [-1.0, -0.6)).
GROUND_Z = -0.8
CROSS_HALF_WIDTH = 5.0
#: (length, width, height) in metres per agent class (lidarseg index).
AGENT_SIZES: dict[int, tuple[float, float, float]] = {
    C.CAR: (4.5, 1.9, 1.6), C.TRUCK: (7.5, 2.5, 3.2), C.BUS: (11.0, 2.9, 3.4),
    C.PEDESTRIAN: (0.7, 0.7, 1.75), C.BICYCLE: (1.8, 0.6, 1.4),
}


@dataclass(frozen=True)
class Layout:
    """Cross-section of one scene's street, drawn per scene (|y| in metres from the centre line).

    Road ``|y| < road_half_width`` (two lanes at ``|y| = lane_y``), sidewalk up to
    ``sidewalk_outer``, roadside strip up to ``strip_outer``, then other_flat with
    buildings. Objects keep their roles relative to these bands.
    """

    road_half_width: float
    sidewalk_outer: float
    strip_outer: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Layout:
        road = float(rng.uniform(4.0, 7.0))
        sidewalk = road + float(rng.uniform(2.5, 4.5))
        return cls(road, sidewalk, sidewalk + float(rng.uniform(5.0, 7.0)))

    @property
    def lane_y(self) -> float:
        """Lateral centre of the two traffic lanes."""
        return self.road_half_width / 2

    @property
    def bike_lane_y(self) -> float:
        return self.road_half_width - 0.8

    def on_sidewalk(self, fraction: float) -> float:
        """|y| at ``fraction`` of the sidewalk's width from the road edge."""
        return self.road_half_width + fraction * (self.sidewalk_outer - self.road_half_width)

    @property
    def strip_centre(self) -> float:
        return (self.sidewalk_outer + self.strip_outer) / 2

    def bands(self) -> np.ndarray:
        """(3,) float64 road, sidewalk and strip outer |y| for :func:`raycast.ground_class`."""
        return np.array([self.road_half_width, self.sidewalk_outer, self.strip_outer])


@dataclass
class Agents:
    """Moving agents: x(t) = x0 + vx * t; y(t) = y0 + amp * sin(freq * t + phase)."""

    label: np.ndarray  # (A,) int32 lidarseg index
    size: np.ndarray  # (A, 3) float64 l, w, h
    x0: np.ndarray  # (A,)
    vx: np.ndarray  # (A,) m/s
    y0: np.ndarray  # (A,)
    amp: np.ndarray  # (A,) m
    freq: np.ndarray  # (A,) rad/s
    phase: np.ndarray  # (A,) rad
    inst: np.ndarray  # (A,) int32 instance id (>= 1)


@dataclass
class World:
    """One scene: ground layout, static boxes, agents, ego trajectory and global placement."""

    layout: Layout
    #: y of the ego's lane, which drives +x: -lane_y for right-hand traffic, +lane_y for left
    ego_lane_y: float
    cross_x: float
    seg_edges: np.ndarray  # (E,) float64 x where the roadside strip changes
    seg_kind: np.ndarray  # (2, E + 1) int32 strip class per side (0: y < 0, 1: y > 0)
    static_boxes: np.ndarray  # (S, 7) float64
    static_label: np.ndarray  # (S,) int32 lidarseg index
    static_inst: np.ndarray  # (S,) int32, 0 for stuff
    agents: Agents
    ego_speed: float
    ego_wiggle: tuple[float, float, float]  # amp m, freq rad/s, phase rad
    global_from_world: np.ndarray  # (4, 4)
    #: instance id -> lidarseg index, for every annotated object (ids 1..N)
    instance_label: dict[int, int] = field(default_factory=dict)
    #: instance ids of objects that move
    moving: set[int] = field(default_factory=set)

    def ground_params(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Arguments of :func:`raycast.ground_class` for this world."""
        return self.layout.bands(), self.cross_x, self.seg_edges, self.seg_kind

    def boxes_at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All boxes at scene time ``t`` (s).

        Returns:
            boxes (N, 7) float64 world frame, label (N,) int32 lidarseg, inst (N,) int32.
        """
        a = self.agents
        arg = a.freq * t + a.phase
        x = a.x0 + a.vx * t
        y = a.y0 + a.amp * np.sin(arg)
        dy = a.amp * a.freq * np.cos(arg)
        yaw = np.arctan2(dy, a.vx)
        moving = np.column_stack([x, y, GROUND_Z + a.size[:, 2] / 2, a.size, yaw])
        boxes = np.concatenate([self.static_boxes, moving])
        label = np.concatenate([self.static_label, a.label]).astype(np.int32)
        inst = np.concatenate([self.static_inst, a.inst]).astype(np.int32)
        return boxes, label, inst

    def ego_pose(self, t: float) -> np.ndarray:
        """(4, 4) ego->world transform at scene time ``t`` (s); the ego stays level at z = 0."""
        amp, freq, phase = self.ego_wiggle
        x = self.ego_speed * t
        y = self.ego_lane_y + amp * np.sin(freq * t + phase)
        yaw = np.arctan2(amp * freq * np.cos(freq * t + phase), self.ego_speed)
        pose = np.eye(4)
        pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        pose[:2, 3] = x, y
        return pose


def _box(x: float, y: float, l: float, w: float, h: float, yaw: float,
         z_bottom: float = GROUND_Z) -> list[float]:
    return [x, y, z_bottom + h / 2, l, w, h, yaw]


def build_world(rng: np.random.Generator, duration: float, left_hand_traffic: bool) -> World:
    """Draw one scene whose ego drives for ``duration`` seconds.

    ``left_hand_traffic`` puts the ego lane on the left of the road (Singapore) instead of the
    right (Boston).

    Every scene has the same classes in the same roles; the street's cross-section
    (:class:`Layout`), positions, sizes, speeds and the global placement vary with ``rng``.
    """
    layout = Layout.draw(rng)
    ego_lane_y = layout.lane_y if left_hand_traffic else -layout.lane_y
    ego_speed = float(rng.uniform(4.0, 7.0))
    travel = ego_speed * duration
    x_min, x_max = -70.0, travel + 70.0
    cross_x = float(rng.uniform(-15.0, travel + 35.0))

    edges = [x_min - 50.0]
    while edges[-1] < x_max + 50.0:
        edges.append(edges[-1] + float(rng.uniform(12.0, 30.0)))
    seg_edges = np.asarray(edges[1:-1], dtype=np.float64)
    seg_kind = np.where(rng.random((2, len(seg_edges) + 1)) < 0.6, C.TERRAIN,
                        C.OTHER_FLAT).astype(np.int32)

    def near_cross(x: float, half_len: float, margin: float) -> bool:
        return abs(x - cross_x) < CROSS_HALF_WIDTH + margin + half_len

    boxes: list[list[float]] = []
    labels: list[int] = []
    insts: list[int] = []
    instance_label: dict[int, int] = {}

    def add(box: list[float], label: int, annotated: bool) -> None:
        inst = 0
        if annotated:
            inst = len(instance_label) + 1
            instance_label[inst] = label
        boxes.append(box)
        labels.append(label)
        insts.append(inst)

    for side in (-1.0, 1.0):
        # buildings behind the roadside strip
        x = x_min + float(rng.uniform(0.0, 6.0))
        while x < x_max:
            length = float(rng.uniform(8.0, 22.0))
            if not near_cross(x + length / 2, length / 2, 4.0):
                depth = float(rng.uniform(8.0, 14.0))
                y_in = layout.strip_outer + 0.5 + float(rng.uniform(0.0, 2.0))
                add(_box(x + length / 2, side * (y_in + depth / 2), length, depth,
                         float(rng.uniform(5.0, 16.0)), 0.0), C.MANMADE, False)
            x += length + float(rng.uniform(2.0, 6.0))
        # trees on terrain, parked cars on other-flat
        kinds = seg_kind[0 if side < 0 else 1]
        bounds = np.concatenate([[x_min - 50.0], seg_edges, [x_max + 50.0]])
        for kind, lo, hi in zip(kinds, bounds[:-1], bounds[1:]):
            lo, hi = max(lo, x_min), min(hi, x_max)
            x = lo + 3.0
            while x < hi - 3.0:
                if kind == C.TERRAIN:
                    if not near_cross(x, 2.0, 1.0):
                        y = side * (layout.strip_centre + float(rng.uniform(-0.6, 0.6)))
                        crown = float(rng.uniform(2.4, 3.4))
                        add(_box(x, y, 0.4, 0.4, 2.2, 0.0), C.VEGETATION, False)
                        add(_box(x, y, crown, crown, float(rng.uniform(2.5, 3.5)),
                                 float(rng.uniform(0, np.pi)), z_bottom=GROUND_Z + 2.2),
                            C.VEGETATION, False)
                    x += float(rng.uniform(6.0, 9.0))
                else:
                    if rng.random() < 0.6 and not near_cross(x, 1.0, 1.0):
                        l, w, h = AGENT_SIZES[C.CAR]
                        add(_box(x, side * layout.strip_centre, l, w, h, side * np.pi / 2),
                            C.CAR, True)
                    x += 3.2
        # barrier rows and cone lines on the outer sidewalk
        for label, y, step, size, count in (
                (C.BARRIER, layout.on_sidewalk(0.87), 2.2, (2.0, 0.5, 1.0), (3, 6)),
                (C.TRAFFIC_CONE, layout.on_sidewalk(0.67), 1.5, (0.4, 0.4, 0.7), (3, 7))):
            taken: list[tuple[float, float]] = []
            for _ in range(int(rng.integers(1, 3))):
                n = int(rng.integers(*count))
                x0 = float(rng.uniform(-30.0, travel + 30.0))
                x1 = x0 + (n - 1) * step
                if near_cross((x0 + x1) / 2, (x1 - x0) / 2 + size[0], 1.0) or any(
                        x0 - step < b and a < x1 + step for a, b in taken):
                    continue
                taken.append((x0, x1))
                for i in range(n):
                    add(_box(x0 + i * step, side * y, *size, 0.0), label, True)

    agents = _build_agents(rng, layout, ego_lane_y, ego_speed, duration, x_min, x_max,
                           instance_label)
    moving = {int(i) for i, v in zip(agents.inst, agents.vx) if abs(v) > 0.1}

    origin = rng.uniform(300.0, 1800.0, size=2)
    phi = float(rng.uniform(-np.pi, np.pi))
    g = np.eye(4)
    g[:2, :2] = [[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]]
    g[:2, 3] = origin
    return World(
        layout=layout, ego_lane_y=ego_lane_y, cross_x=cross_x, seg_edges=seg_edges,
        seg_kind=seg_kind,
        static_boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 7),
        static_label=np.asarray(labels, dtype=np.int32),
        static_inst=np.asarray(insts, dtype=np.int32), agents=agents, ego_speed=ego_speed,
        ego_wiggle=(float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.5, 1.0)),
                    float(rng.uniform(0, 2 * np.pi))),
        global_from_world=g, instance_label=instance_label, moving=moving)


def _build_agents(rng: np.random.Generator, layout: Layout, ego_lane_y: float, ego_speed: float,
                  duration: float, x_min: float, x_max: float,
                  instance_label: dict[int, int]) -> Agents:
    """Agents on lanes: every lane has one speed, so agents of a lane never collide."""
    rows: list[tuple[int, float, float, float, float, float, float]] = []

    def fill_lane(y0: float, vx: float, kinds: list[int], probs: list[float],
                  gap: tuple[float, float], amp: float, density: float,
                  keep_clear: tuple[float, float] | None) -> None:
        """Agents along the lane y = y0 with bumper gaps drawn from ``gap`` (m)."""
        lo = x_min - max(0.0, vx) * duration
        hi = x_max - min(0.0, vx) * duration
        x = lo + float(rng.uniform(0.0, gap[1]))
        while x < hi:
            kind = int(rng.choice(kinds, p=probs))
            length = AGENT_SIZES[kind][0]
            centre = x + length / 2
            clear = keep_clear is None or not (keep_clear[0] < centre < keep_clear[1])
            if clear and rng.random() < density:
                rows.append((kind, centre, vx, y0, amp, float(rng.uniform(0.3, 0.8)),
                             float(rng.uniform(0, 2 * np.pi))))
            x += length + float(rng.uniform(*gap))

    vehicles, vprobs = [C.CAR, C.TRUCK, C.BUS], [0.7, 0.18, 0.12]
    # ego lane: same speed as the ego, keep a gap around it
    fill_lane(ego_lane_y, ego_speed, vehicles, vprobs, (8.0, 18.0), 0.3, 0.8, (-14.0, 14.0))
    fill_lane(-ego_lane_y, -float(rng.uniform(4.0, 9.0)), vehicles, vprobs, (8.0, 20.0), 0.3, 0.8,
              None)
    for side in (-1.0, 1.0):
        # bicycles ride with the traffic of their side
        direction = 1.0 if side * ego_lane_y > 0 else -1.0
        fill_lane(side * layout.bike_lane_y, direction * float(rng.uniform(3.0, 5.0)),
                  [C.BICYCLE], [1.0], (6.0, 30.0), 0.1, 0.5, None)
        for i, y in enumerate((layout.on_sidewalk(0.15), layout.on_sidewalk(0.4))):
            direction = 1.0 if i == 0 else -1.0
            fill_lane(side * y, direction * float(rng.uniform(0.8, 1.6)), [C.PEDESTRIAN],
                      [1.0], (2.0, 12.0), 0.0, 0.4, None)
    insts = []
    for row in rows:
        inst = len(instance_label) + 1
        instance_label[inst] = row[0]
        insts.append(inst)
    arr = np.asarray([r[1:] for r in rows], dtype=np.float64).reshape(-1, 6)
    label = np.asarray([r[0] for r in rows], dtype=np.int32)
    return Agents(
        label=label, size=np.asarray([AGENT_SIZES[k] for k in label]).reshape(-1, 3),
        x0=arr[:, 0], vx=arr[:, 1], y0=arr[:, 2], amp=arr[:, 3], freq=arr[:, 4],
        phase=arr[:, 5], inst=np.asarray(insts, dtype=np.int32))
