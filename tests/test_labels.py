"""The label placer as pure geometry (report/labels.py): no matplotlib, boxes in and boxes out."""

from __future__ import annotations

import random
import subprocess
import sys
from itertools import combinations

from evalkit.report.labels import (
    LEADER_FROM_PT,
    Box,
    LabelSpec,
    box_distance,
    inside,
    leader_line,
    overlaps,
    place_labels,
    point_box,
    polyline_boxes,
    segment_hits_box,
    segments_cross,
    text_box,
)

AREA: Box = (0.0, 0.0, 400.0, 300.0)


def label(
    key: str, x: float, y: float, w: float = 40.0, h: float = 8.0, essential: bool = False
) -> LabelSpec:
    return LabelSpec(key, (x, y), w, h, marker_radius=3.0, essential=essential)


def markers(labels: list[LabelSpec]) -> list[tuple[str, Box]]:
    return [(lab.key, point_box(lab.point, lab.marker_radius)) for lab in labels]


def test_the_placer_needs_no_plotting_library() -> None:
    code = "import sys, evalkit.report.labels; assert 'matplotlib' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_geometry_helpers() -> None:
    assert text_box(10, 20, 30, 8, "left", "bottom") == (10, 20, 40, 28)
    assert text_box(10, 20, 30, 8, "right", "top") == (-20, 12, 10, 20)
    assert text_box(10, 20, 30, 8, "center", "center") == (-5, 16, 25, 24)
    assert overlaps((0, 0, 10, 10), (5, 5, 15, 15)) and not overlaps((0, 0, 10, 10), (10, 0, 20, 10))
    assert overlaps((0, 0, 10, 10), (11, 0, 20, 10), pad=2)  # padding grows the first box
    assert box_distance((0, 0, 10, 10), (5, 5)) == 0 and box_distance((0, 0, 10, 10), (13, 14)) == 5
    assert inside((1, 1, 9, 9), (0, 0, 10, 10)) and not inside((1, 1, 11, 9), (0, 0, 10, 10))
    assert segments_cross((0, 0), (10, 10), (0, 10), (10, 0))
    assert not segments_cross((0, 0), (10, 10), (10, 10), (20, 0))  # a shared end point is no crossing
    assert segment_hits_box((0, 5), (30, 5), (10, 0, 20, 10)) and not segment_hits_box(
        (0, 20), (30, 20), (10, 0, 20, 10)
    )
    assert polyline_boxes([(0, 0), (10, 0), (10, 5)], half_width=1) == [(-1, -1, 11, 1), (9, -1, 11, 6)]


def test_a_leader_runs_from_the_box_edge_to_just_outside_the_marker() -> None:
    (x0, y0), (x1, y1) = leader_line((100, 0, 140, 10), (50, 5), clear=4)
    assert (x0, y0) == (100, 5) and (x1, y1) == (54, 5)


def test_a_lone_label_sits_right_beside_its_point() -> None:
    lab = label("a", 100, 100)
    layout = place_labels([lab], AREA, markers([lab]))
    (p,) = layout.placements
    assert (p.key, p.offset_pt, p.direction, p.ha, p.va, p.leader) == ("a", 4, (1, 0), "left", "center", None)
    assert p.box == (104, 96, 144, 104) and layout.badness == 0


def test_the_area_edge_and_obstacles_push_a_label_round() -> None:
    lab = label("a", 380, 100)  # no room on the right
    (p,) = place_labels([lab], AREA, markers([lab])).placements
    assert p.direction == (-1, 0) and p.ha == "right" and inside(p.box, AREA)
    wall = ("wall", (250, 90, 300, 110))  # another point's bar, to the right of this one
    (p,) = place_labels([label("b", 240, 100)], AREA, [wall]).placements
    assert not overlaps(p.box, wall[1], 1.0)


def test_near_labels_stay_nearest_their_own_point() -> None:
    labels = [label("a", 100, 100), label("b", 150, 100)]
    layout = place_labels(labels, AREA, markers(labels))
    for p in layout.placements:
        if p.leader is None:
            own = next(lab.point for lab in labels if lab.key == p.key)
            others = [lab.point for lab in labels if lab.key != p.key]
            assert all(box_distance(p.box, own) + 3 <= box_distance(p.box, q) for q in others), p


def test_soft_obstacles_are_avoided_while_there_is_room() -> None:
    line = (0.0, 98.0, 400.0, 102.0)  # a horizontal frontier line through the point
    lab = label("a", 100, 100)
    layout = place_labels([lab], AREA, markers([lab]), soft=[line])
    (p,) = layout.placements
    assert not overlaps(p.box, line, 1.0) and layout.labels_on_soft == 0
    # In a strip too thin to clear the line, the label sits on it (it is drawn on a white backing).
    strip = (0.0, 90.0, 400.0, 110.0)
    layout = place_labels([lab], strip, markers([lab]), soft=[line])
    assert len(layout.placements) == 1 and layout.labels_on_soft == 1 and layout.badness == 10


def test_crowded_points_get_leader_lines_that_cross_nothing() -> None:
    labels = [label(f"p{i}", 200 + 8 * i, 150 + 4 * i, w=50) for i in range(6)]
    obstacles = markers(labels)
    layout = place_labels(labels, AREA, obstacles)
    assert not layout.unlabelled and not layout.forced_overlaps
    led = [p for p in layout.placements if p.leader is not None]
    assert led and all(p.offset_pt >= LEADER_FROM_PT for p in led)
    boxes = [p.box for p in layout.placements]
    for p in led:
        a, b = p.leader
        assert not any(segment_hits_box(a, b, box, 0.0) for box in boxes if box != p.box)
        assert not any(segment_hits_box(a, b, o, 0.0) for key, o in obstacles if key != p.key)
    assert layout.leader_px > 0 and layout.badness > 0


def test_what_fits_nowhere_is_left_out_unless_essential() -> None:
    lab = label("a", 60, 20)
    cover = ("other", (0.0, 0.0, 120.0, 40.0))  # another point's bar over the whole area
    layout = place_labels([lab], (0.0, 0.0, 120.0, 40.0), [cover])
    assert not layout.placements and layout.unlabelled == ["a"] and layout.badness == 100
    essential = label("a", 60, 20, essential=True)
    layout = place_labels([essential], (0.0, 0.0, 120.0, 40.0), [cover])
    (p,) = layout.placements  # the nearest position, overlapping the least, and said so
    assert p.offset_pt == 4 and layout.forced_overlaps == ["a"] and layout.badness == 1000
    # A label wider than the area has no position at all, essential or not.
    assert place_labels([label("b", 30, 10, w=80, essential=True)], (0.0, 0.0, 60.0, 20.0)).unlabelled == [
        "b"
    ]


def test_random_scatters_never_overlap_and_are_deterministic() -> None:
    rng = random.Random(7)
    for _ in range(20):
        labels = [
            label(f"m{i}", rng.uniform(20, 380), rng.uniform(20, 280), w=rng.uniform(20, 70))
            for i in range(rng.randint(5, 25))
        ]
        obstacles = markers(labels)
        layout = place_labels(labels, AREA, obstacles, px_per_pt=150 / 72)
        assert layout == place_labels(labels, AREA, obstacles, px_per_pt=150 / 72)
        assert len(layout.placements) + len(layout.unlabelled) == len(labels)
        for a, b in combinations(layout.placements, 2):
            assert not overlaps(a.box, b.box), (a, b)
        for p in layout.placements:
            assert inside(p.box, AREA)
            assert not any(overlaps(p.box, o, 1.0) for _, o in obstacles), p
