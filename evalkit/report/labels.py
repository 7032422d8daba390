"""Label placement as box geometry: boxes in, boxes out, no plotting library.

A chart hands over, in display pixels, each label's size and its point (with the radius of the point's
marker), the area labels must stay inside, hard obstacles (markers, interval bars) and soft ones (the
frontier line). :func:`place_labels` places the labels one by one in the order given, greedily: each
tries positions around its point at growing distances (:data:`RADII_PT`, in points) in twelve
directions and takes the cheapest clear one. Near positions have no leader line, so the label must be
nearer its own point than any other; far ones (from :data:`LEADER_FROM_PT`) get a thin leader line,
which must not cross a label or another point's marker or bar.

When no position is clear, the rules are relaxed one step at a time (:data:`RELAXATIONS`): a label may
sit on a soft obstacle (it is drawn on a white backing), then its leader may cross one, then other
leader lines. A label that still fits nowhere is left out (``unlabelled``), unless it is essential:
then it takes the nearest position with the fewest collisions and is named in ``forced_overlaps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels (y grows upwards)
Point = tuple[float, float]
Segment = tuple[Point, Point]

# Directions around a point: unit offset and the text alignment that puts the box on that side.
DIRECTIONS: tuple[tuple[tuple[float, float], str, str], ...] = (
    ((1, 0), "left", "center"),
    ((-1, 0), "right", "center"),
    ((0.7, 0.7), "left", "bottom"),
    ((-0.7, 0.7), "right", "bottom"),
    ((0.7, -0.7), "left", "top"),
    ((-0.7, -0.7), "right", "top"),
    ((0, 1), "center", "bottom"),
    ((0, -1), "center", "top"),
    ((0.92, 0.38), "left", "bottom"),
    ((-0.92, 0.38), "right", "bottom"),
    ((0.92, -0.38), "left", "top"),
    ((-0.92, -0.38), "right", "top"),
)
RADII_PT = (4, 9, 16, 26, 38, 52, 68, 86, 106, 130)  # distances from the point tried, in points
LEADER_FROM_PT = 14  # labels at least this far from their point get a leader line
# Cost of a position: its distance, plus these for a leader line and per waiting point it crowds.
LEADER_COST_PT = 20
CROWDING_COST_PT = 8
CROWDING_RADIUS_PT = 22
# Badness of a finished placement (to compare placements): per pixel of leader line, per leader
# across a soft obstacle (it misleads the eye), per label on one, per label left out or forced.
BADNESS_PER_LEADER_PX = 1 / 40
BADNESS_LEADER_ACROSS_SOFT = 25
BADNESS_LABEL_ON_SOFT = 10
BADNESS_UNLABELLED = 100
BADNESS_FORCED = 1000


@dataclass(frozen=True)
class Relaxation:
    """What a position may do that a fully clear one may not."""

    label_on_soft: bool = False
    leader_across_soft: bool = False
    leader_across_leaders: bool = False


RELAXATIONS = (
    Relaxation(),
    Relaxation(label_on_soft=True),
    Relaxation(label_on_soft=True, leader_across_soft=True),
    Relaxation(label_on_soft=True, leader_across_soft=True, leader_across_leaders=True),
)


@dataclass(frozen=True)
class LabelSpec:
    """A label to place: its text box size and its point, in display pixels."""

    key: str  # the label's text; obstacles of its own point carry the same key
    point: Point
    width: float
    height: float
    marker_radius: float  # the point's own marker, which a leader line stops short of
    essential: bool = False  # placed even when nothing is clear (highlight, own runs, frontier)


@dataclass(frozen=True)
class Placement:
    """Where a label went: ``offset_pt`` points from its point in ``direction``, aligned ``ha``/``va``."""

    key: str
    offset_pt: float
    direction: tuple[float, float]
    ha: str
    va: str
    box: Box
    leader: Segment | None  # from the box edge to just outside the marker, when far from the point


@dataclass
class LabelLayout:
    """The placer's result, with what makes one placement worse than another."""

    placements: list[Placement] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    forced_overlaps: list[str] = field(default_factory=list)
    leader_px: float = 0.0  # total length of leader lines
    leaders_across_soft: int = 0
    labels_on_soft: int = 0

    @property
    def badness(self) -> float:
        return (
            self.leader_px * BADNESS_PER_LEADER_PX
            + BADNESS_LEADER_ACROSS_SOFT * self.leaders_across_soft
            + BADNESS_LABEL_ON_SOFT * self.labels_on_soft
            + BADNESS_UNLABELLED * len(self.unlabelled)
            + BADNESS_FORCED * len(self.forced_overlaps)
        )

    @property
    def boxes(self) -> dict[str, Box]:
        return {p.key: p.box for p in self.placements}


# --- geometry ---------------------------------------------------------------------------------


def overlaps(a: Box, b: Box, pad: float = 0.0) -> bool:
    """Whether two boxes overlap, ``a`` grown by ``pad`` on every side."""
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def inside(box: Box, area: Box) -> bool:
    return box[0] >= area[0] and box[2] <= area[2] and box[1] >= area[1] and box[3] <= area[3]


def box_distance(box: Box, p: Point) -> float:
    """Distance from a point to a box (0 inside)."""
    dx = max(box[0] - p[0], 0.0, p[0] - box[2])
    dy = max(box[1] - p[1], 0.0, p[1] - box[3])
    return math.hypot(dx, dy)


def text_box(px: float, py: float, w: float, h: float, ha: str, va: str) -> Box:
    """The box of a ``w`` x ``h`` text anchored at (px, py) with matplotlib's ha/va alignment."""
    x0 = px if ha == "left" else px - w if ha == "right" else px - w / 2
    y0 = py if va == "bottom" else py - h if va == "top" else py - h / 2
    return (x0, y0, x0 + w, y0 + h)


def segments_cross(a0: Point, a1: Point, b0: Point, b1: Point) -> bool:
    """Whether two segments properly intersect (shared end points do not count)."""

    def orient(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2 = orient(b0, b1, a0), orient(b0, b1, a1)
    d3, d4 = orient(a0, a1, b0), orient(a0, a1, b1)
    return d1 * d2 < 0 and d3 * d4 < 0


def segment_hits_box(p0: Point, p1: Point, box: Box, pad: float = 1.0) -> bool:
    """Whether a segment passes through a box (sampled every ~2 px: boxes here are at least 8 px)."""
    # Most boxes are nowhere near the segment: its bounding box settles those without sampling.
    if (
        max(p0[0], p1[0]) < box[0] - pad
        or min(p0[0], p1[0]) > box[2] + pad
        or max(p0[1], p1[1]) < box[1] - pad
        or min(p0[1], p1[1]) > box[3] + pad
    ):
        return False
    n = max(2, int(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) / 2))
    for i in range(n + 1):
        x = p0[0] + (p1[0] - p0[0]) * i / n
        y = p0[1] + (p1[1] - p0[1]) * i / n
        if box[0] - pad <= x <= box[2] + pad and box[1] - pad <= y <= box[3] + pad:
            return True
    return False


def leader_line(box: Box, point: Point, clear: float) -> Segment:
    """The visible part of a leader line: from the label box edge to ``clear`` px from the point."""
    px, py = point
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    dx, dy = cx - px, cy - py
    d = math.hypot(dx, dy) or 1.0
    # Where the centre->point segment leaves the box.
    tx = (box[2] - box[0]) / 2 / abs(dx) if dx else math.inf
    ty = (box[3] - box[1]) / 2 / abs(dy) if dy else math.inf
    t = min(tx, ty, 1.0)
    start = (cx - dx * t, cy - dy * t)
    end = (px + dx / d * clear, py + dy / d * clear)
    return start, end


def point_box(point: Point, radius: float) -> Box:
    return (point[0] - radius, point[1] - radius, point[0] + radius, point[1] + radius)


def polyline_boxes(points: Sequence[Point], half_width: float = 1.5) -> list[Box]:
    """Thin boxes along a polyline of axis-aligned segments (a step line)."""
    return [
        (
            min(x0, x1) - half_width,
            min(y0, y1) - half_width,
            max(x0, x1) + half_width,
            max(y0, y1) + half_width,
        )
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False)
    ]


# --- the placer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    offset_pt: float
    direction: tuple[float, float]
    ha: str
    va: str
    box: Box


class _Placer:
    """State of one greedy pass: what is placed so far, and the checks a new position must pass."""

    def __init__(
        self,
        labels: Sequence[LabelSpec],
        area: Box,
        obstacles: Sequence[tuple[str, Box]],
        soft: Sequence[Box],
        px_per_pt: float,
    ) -> None:
        self.labels, self.area, self.obstacles, self.soft = labels, area, obstacles, soft
        self.px_per_pt = px_per_pt
        self.placed: list[Box] = []
        self.leaders: list[Segment] = []
        self.layout = LabelLayout()

    def candidates(self, lab: LabelSpec, radii: Sequence[float] = RADII_PT) -> list[_Candidate]:
        px, py = lab.point
        out = []
        for r in radii:
            for (ux, uy), ha, va in DIRECTIONS:
                x, y = px + ux * r * self.px_per_pt, py + uy * r * self.px_per_pt
                box = text_box(x, y, lab.width, lab.height, ha, va)
                if inside(box, self.area):
                    out.append(_Candidate(r, (ux, uy), ha, va, box))
        return out

    def box_is_free(self, box: Box, relax: Relaxation) -> bool:
        """Clear of placed labels, hard obstacles, leader lines and (unless relaxed) soft obstacles."""
        if any(overlaps(box, p, 2.0) for p in self.placed):
            return False
        if any(overlaps(box, o, 1.0) for _, o in self.obstacles):
            return False
        if not relax.label_on_soft and any(overlaps(box, s, 1.0) for s in self.soft):
            return False
        return not any(segment_hits_box(a, b, box) for a, b in self.leaders)

    def nearest_point_is_own(self, i: int, box: Box) -> bool:
        """Without a leader line a reader pairs a label with the nearest point: it must be its own."""
        own = box_distance(box, self.labels[i].point)
        return not any(
            box_distance(box, other.point) < own + 3 for j, other in enumerate(self.labels) if j != i
        )

    def leader_is_free(self, lab: LabelSpec, box: Box, relax: Relaxation) -> bool:
        a, b = leader_line(box, lab.point, lab.marker_radius + 1)
        if any(segment_hits_box(a, b, p, 3.0) for p in self.placed):
            return False
        if any(segment_hits_box(a, b, o, 0.0) for key, o in self.obstacles if key != lab.key):
            return False
        if not relax.leader_across_leaders and any(segments_cross(a, b, c, d) for c, d in self.leaders):
            return False
        return relax.leader_across_soft or not any(segment_hits_box(a, b, s, 0.0) for s in self.soft)

    def is_clear(self, i: int, c: _Candidate, relax: Relaxation) -> bool:
        if not self.box_is_free(c.box, relax):
            return False
        if c.offset_pt < LEADER_FROM_PT:
            return self.nearest_point_is_own(i, c.box)
        return self.leader_is_free(self.labels[i], c.box, relax)

    def cheapest(self, i: int, relax: Relaxation) -> _Candidate | None:
        """The cheapest clear position: near its point, without a leader line if possible, and away
        from points still waiting for a label (a label parked beside them steals their room)."""
        waiting = [lab.point for lab in self.labels[i + 1 :]]
        best: _Candidate | None = None
        best_cost = math.inf
        for c in self.candidates(self.labels[i]):
            if c.offset_pt > best_cost:  # the cost is at least the distance: farther cannot win
                break
            if not self.is_clear(i, c, relax):
                continue
            near = sum(1 for q in waiting if box_distance(c.box, q) < CROWDING_RADIUS_PT * self.px_per_pt)
            cost = (
                c.offset_pt
                + CROWDING_COST_PT * near
                + (LEADER_COST_PT if c.offset_pt >= LEADER_FROM_PT else 0)
            )
            if cost < best_cost:
                best_cost, best = cost, c
        return best

    def least_colliding(self, lab: LabelSpec) -> tuple[int, _Candidate] | None:
        """The nearest position with the fewest collisions (for an essential label with no clear one)."""
        best: tuple[int, _Candidate] | None = None
        for c in self.candidates(lab):
            hits = sum(overlaps(c.box, p, 2.0) for p in self.placed)
            hits += sum(overlaps(c.box, o) for _, o in self.obstacles)
            if best is None or hits < best[0]:
                best = (hits, c)
        return best

    def choose(self, i: int) -> _Candidate | None:
        lab = self.labels[i]
        for relax in RELAXATIONS:
            choice = self.cheapest(i, relax)
            if choice is not None:
                return choice
        fallback = self.least_colliding(lab) if lab.essential else None
        if fallback is None:
            self.layout.unlabelled.append(lab.key)
            return None
        if fallback[0]:
            self.layout.forced_overlaps.append(lab.key)
        return fallback[1]

    def commit(self, lab: LabelSpec, c: _Candidate) -> None:
        leader = None
        if c.offset_pt >= LEADER_FROM_PT:
            leader = leader_line(c.box, lab.point, lab.marker_radius + 1)
            self.leaders.append(leader)
            (a, b) = leader
            self.layout.leader_px += math.hypot(b[0] - a[0], b[1] - a[1])
            if any(segment_hits_box(a, b, s, 0.0) for s in self.soft):
                self.layout.leaders_across_soft += 1
        if any(overlaps(c.box, s, 1.0) for s in self.soft):
            self.layout.labels_on_soft += 1
        self.layout.placements.append(Placement(lab.key, c.offset_pt, c.direction, c.ha, c.va, c.box, leader))
        self.placed.append(c.box)


def place_labels(
    labels: Sequence[LabelSpec],
    area: Box,
    obstacles: Sequence[tuple[str, Box]] = (),
    soft: Sequence[Box] = (),
    px_per_pt: float = 1.0,
) -> LabelLayout:
    """Place ``labels`` in the order given (see the module docstring). ``obstacles`` are keyed by the
    label of the point they belong to (a label's leader may end on its own marker); ``px_per_pt``
    converts the offsets, in points, to pixels (dpi / 72)."""
    placer = _Placer(labels, area, obstacles, soft, px_per_pt)
    for i, lab in enumerate(labels):
        choice = placer.choose(i)
        if choice is not None:
            placer.commit(lab, choice)
    return placer.layout
