"""Frontier charts (matplotlib, Agg): score versus parameters on a log axis, the Pareto frontier as a
step line, interval bars on the user's runs, published numbers coloured by their source, and labels
placed so that none overlaps another label or any point.

Label placement is a small greedy search (no extra dependency): labels are placed in priority order
(highlighted model, own runs, frontier points, the rest); each tries positions around its point at
growing distances and takes the first whose box is inside the axes and clear of every placed label,
marker, interval bar and the frontier line. Far positions get a thin leader line. A label that fits
nowhere is left out and named in the caption, so nothing is hidden silently.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from evalkit.report.frontier import FrontierResult

# First public day of benchmarks held at a known date, to say which models could not have seen them.
BENCHMARK_DATES = {"amc_2024": dt.date(2024, 11, 6)}
BENCHMARK_TITLES = {
    "mmlu_pro": "MMLU-Pro",
    "math": "MATH (5,000 problems)",
    "math500": "MATH-500",
    "amc_2024": "AMC 10/12, November 2024",
}
KIND_MARKERS = {"instruct": "o", "reasoning": "D", "base": "s"}
KIND_NAMES = {
    "instruct": "instruct / chat model (published)",
    "reasoning": "long chain-of-thought reasoning model (published)",
    "base": "base model (published)",
}
# Fixed colours per source, so one source looks the same on every chart.
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
]
RUN_COLOR = "#000000"
HIGHLIGHT_COLOR = "#e6550d"
FRONTIER_COLOR = "#333333"
LABEL_FONTSIZE = 7.0
DPI = 150


@dataclass
class ChartInfo:
    """What was drawn: files, label boxes (display pixels), and labels that did not fit."""

    paths: list[Path] = field(default_factory=list)
    label_boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    forced_overlaps: list[str] = field(default_factory=list)
    badness: float = 0.0  # how ugly the placement is: labels left out, long or crossing leader lines
    placements: list[Any] = field(default_factory=list, repr=False)


def format_params(v: float, _pos: Any = None) -> str:
    """Billions of parameters as a short tick label: 0.1 -> 100M, 1 -> 1B, 30 -> 30B, 1000 -> 1T."""
    if v <= 0:
        return ""
    if v >= 1000:
        return f"{v / 1000:g}T"
    if v >= 1:
        return f"{v:g}B"
    return f"{v * 1000:g}M"


def score_label(benchmark: str, metric: str) -> str:
    """Y-axis label: accuracy in percent, AMC in points out of 150."""
    title = BENCHMARK_TITLES.get(benchmark, benchmark)
    if metric == "amc_points":
        return f"{title}: mean score (points out of 150)"
    if metric == "accuracy":
        return f"{title} accuracy (%)"
    return f"{title} {metric} (%)"


def source_colors(sources: Iterable[str]) -> dict[str, str]:
    """Colour per source, stable across charts: order of the published file, then anything new."""
    from evalkit.catalog.published import load_published

    known = list(dict.fromkeys(load_published()["source"]))
    out: dict[str, str] = {}
    for s in [*known, *sorted(set(sources) - set(known))]:
        out[s] = PALETTE[len(out) % len(PALETTE)]
    return out


def _setting_without_kind(setting: Any) -> str:
    head, _, rest = str(setting).partition("; ")
    return rest if rest and head in ("base", "instruct", "chat", "reasoning") else str(setting)


# --- label placement --------------------------------------------------------------------------

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels

# Directions around a point: unit offset and text alignment.
_DIRECTIONS = [
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
]
_RADII_PT = (4, 9, 16, 26, 38, 52, 68, 86, 106, 130)
_LEADER_FROM_PT = 14


def _overlaps(a: Box, b: Box, pad: float = 0.0) -> bool:
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def _box_distance(box: Box, p: tuple[float, float]) -> float:
    """Distance from a point to a box (0 inside)."""
    dx = max(box[0] - p[0], 0.0, p[0] - box[2])
    dy = max(box[1] - p[1], 0.0, p[1] - box[3])
    return math.hypot(dx, dy)


def _text_box(px: float, py: float, w: float, h: float, ha: str, va: str) -> Box:
    x0 = px if ha == "left" else px - w if ha == "right" else px - w / 2
    y0 = py if va == "bottom" else py - h if va == "top" else py - h / 2
    return (x0, y0, x0 + w, y0 + h)


@dataclass
class _Label:
    key: str
    text: str
    x: float
    y: float
    essential: bool
    style: dict[str, Any]
    radius_px: float  # the point's own marker, which a leader line stops short of


def _segments_cross(
    a0: tuple[float, float], a1: tuple[float, float], b0: tuple[float, float], b1: tuple[float, float]
) -> bool:
    """Whether two segments properly intersect (shared end points do not count)."""

    def orient(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2 = orient(b0, b1, a0), orient(b0, b1, a1)
    d3, d4 = orient(a0, a1, b0), orient(a0, a1, b1)
    return d1 * d2 < 0 and d3 * d4 < 0


def _segment_hits_box(p0: tuple[float, float], p1: tuple[float, float], box: Box, pad: float = 1.0) -> bool:
    """Whether a segment passes through a box (sampled every ~2 px: boxes here are at least 8 px)."""
    n = max(2, int(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) / 2))
    for i in range(n + 1):
        x = p0[0] + (p1[0] - p0[0]) * i / n
        y = p0[1] + (p1[1] - p0[1]) * i / n
        if box[0] - pad <= x <= box[2] + pad and box[1] - pad <= y <= box[3] + pad:
            return True
    return False


def _leader(box: Box, px: float, py: float, clear: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The visible part of a leader line: from the label box edge to just outside the point's marker."""
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


def _place_labels(
    ax: Any, fig: Figure, labels: Sequence[_Label], obstacles: list[tuple[str, Box]], soft: list[Box]
) -> ChartInfo:
    """Greedy placement (see module docstring). ``obstacles`` are hard (markers, bars); ``soft`` ones
    (the frontier line) are avoided when possible and crossed only when nothing else fits. Leader
    lines never cross a label or another point's marker or bar, and cross another leader line only as
    a last resort. Obstacles are keyed by the label of the point they belong to."""
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    axbox = ax.get_window_extent(renderer)
    inner = (axbox.x0 + 2, axbox.y0 + 2, axbox.x1 - 2, axbox.y1 - 2)
    info = ChartInfo()
    placed: list[Box] = []
    leaders: list[tuple[tuple[float, float], tuple[float, float]]] = []

    def inside(box: Box) -> bool:
        return box[0] >= inner[0] and box[2] <= inner[2] and box[1] >= inner[1] and box[3] <= inner[3]

    pixels = [tuple(ax.transData.transform((lab.x, lab.y))) for lab in labels]
    for i, lab in enumerate(labels):
        probe = ax.text(0, 0, lab.text, fontsize=LABEL_FONTSIZE, **lab.style)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        px, py = ax.transData.transform((lab.x, lab.y))

        def clear(
            box: Box, r: float, level: int, px: float = px, py: float = py, lab: _Label = lab, i: int = i
        ) -> bool:
            """0: clear of everything; 1: the label may sit on the frontier line (it has a white backing);
            2: its leader may also cross that line; 3: and other leader lines."""
            if any(_overlaps(box, p, 2.0) for p in placed):
                return False
            if any(_overlaps(box, o, 1.0) for _, o in obstacles):
                return False
            if level == 0 and any(_overlaps(box, s_, 1.0) for s_ in soft):
                return False
            if any(_segment_hits_box(a, b, box) for a, b in leaders):
                return False
            if r < _LEADER_FROM_PT:
                # Without a leader line the reader pairs a label with the nearest point: it must be its own.
                own = _box_distance(box, (px, py))
                if any(_box_distance(box, q) < own + 3 for j, q in enumerate(pixels) if j != i):
                    return False
            else:
                a, b = _leader(box, px, py, lab.radius_px + 1)
                if any(_segment_hits_box(a, b, p, 3.0) for p in placed):
                    return False
                if any(_segment_hits_box(a, b, o, 0.0) for key, o in obstacles if key != lab.key):
                    return False
                if level < 3 and any(_segments_cross(a, b, c, d) for c, d in leaders):
                    return False
                if level < 2 and any(_segment_hits_box(a, b, s_, 0.0) for s_ in soft):
                    return False
            return True

        # Among clear positions, take the cheapest: near its point, without a leader line if possible,
        # and away from points still waiting for a label (a label parked beside them steals their room).
        waiting = [q for j, q in enumerate(pixels) if j > i]
        choice = None
        for level in (0, 1, 2, 3):
            best_cost = math.inf
            for r in _RADII_PT:
                if r > best_cost:  # the cost is at least the radius; farther radii cannot win
                    break
                for (ux, uy), ha, va in _DIRECTIONS:
                    box = _text_box(px + ux * r * scale, py + uy * r * scale, w, h, ha, va)
                    if not (inside(box) and clear(box, r, level)):
                        continue
                    near = sum(1 for q in waiting if _box_distance(box, q) < 22 * scale)
                    cost = r + 8 * near + (20 if r >= _LEADER_FROM_PT else 0)
                    if cost < best_cost:
                        best_cost, choice = cost, (r, ux, uy, ha, va, box)
            if choice:
                break
        if choice is None and lab.essential:
            # Nothing is clear: take the nearest position inside the axes with the fewest collisions.
            best = None
            for r in _RADII_PT:
                for (ux, uy), ha, va in _DIRECTIONS:
                    box = _text_box(px + ux * r * scale, py + uy * r * scale, w, h, ha, va)
                    if not inside(box):
                        continue
                    hits = sum(_overlaps(box, p, 2.0) for p in placed) + sum(
                        _overlaps(box, o) for _, o in obstacles
                    )
                    if best is None or hits < best[0]:
                        best = (hits, (r, ux, uy, ha, va, box))
            if best is not None:
                choice = best[1]
                if best[0]:
                    info.forced_overlaps.append(lab.text)
        if choice is None:
            info.unlabelled.append(lab.text)
            continue
        r, ux, uy, ha, va, box = choice
        if r >= _LEADER_FROM_PT:
            a, b = _leader(box, px, py, lab.radius_px + 1)
            leaders.append((a, b))
            info.badness += math.hypot(b[0] - a[0], b[1] - a[1]) / 40
            if any(_segment_hits_box(a, b, s_, 0.0) for s_ in soft):
                info.badness += 25  # a leader across the frontier line misleads the eye
        if any(_overlaps(box, s_, 1.0) for s_ in soft):
            info.badness += 10
        info.placements.append((lab, r, ux, uy, ha, va))
        placed.append(box)
        info.label_boxes[lab.text] = box
    info.badness += 100 * len(info.unlabelled) + 1000 * len(info.forced_overlaps)
    return info


def _draw_labels(ax: Any, fig: Figure, info: ChartInfo) -> None:
    scale = fig.dpi / 72.0
    for lab, r, ux, uy, ha, va in info.placements:
        arrow = None
        if r >= _LEADER_FROM_PT:
            arrow = {
                "arrowstyle": "-",
                "lw": 0.5,
                "color": "#999999",
                "shrinkA": 0,
                "shrinkB": lab.radius_px / scale + 1,
            }
        ax.annotate(
            lab.text,
            xy=(lab.x, lab.y),
            xytext=(ux * r, uy * r),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=LABEL_FONTSIZE,
            arrowprops=arrow,
            zorder=6,
            # A light backing keeps a label readable where it crosses the frontier line or the grid.
            bbox={"boxstyle": "square,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.8},
            **lab.style,
        )


def _point_box(px: float, py: float, radius_px: float) -> Box:
    return (px - radius_px, py - radius_px, px + radius_px, py + radius_px)


def _segment_boxes(ax: Any, xs: Sequence[float], ys: Sequence[float], width_px: float = 1.5) -> list[Box]:
    """Thin boxes along a polyline of axis-aligned segments (the step line), in display pixels."""
    boxes = []
    pts = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        boxes.append(
            (min(x0, x1) - width_px, min(y0, y1) - width_px, max(x0, x1) + width_px, max(y0, y1) + width_px)
        )
    return boxes


# --- the chart --------------------------------------------------------------------------------


def _caption(result: FrontierResult, x: str, extra: Sequence[str], unlabelled: Sequence[str]) -> str:
    from evalkit.catalog.published import SOURCE_RULE

    t = result.table
    parts = [
        "Step line: the Pareto frontier (no other model has fewer or equally many parameters and a higher or "
        "equal score). x: "
        + (
            "total parameters (mixture-of-experts models count every expert)"
            if x == "total"
            else "parameters active per token (dense models: all)"
        )
        + ", log scale.",
    ]
    pub = t[t["origin"] == "published"]
    runs = t[t["origin"] == "run"]
    if len(pub) and pub["source"].nunique() > 1:
        parts.append(
            "Published numbers come from different evaluation setups (colour = source, setting listed under it) "
            "and are not strictly comparable with one another or with evalkit runs."
        )
    elif len(pub):
        parts.append(
            "All published numbers here come from one source, whose setting is listed under it; "
            "evalkit runs may use a different setting."
        )
    if len(pub) and (pub["n_sources"] > 1).any():
        parts.append("* other sources report a different number for this model (see the CSV). " + SOURCE_RULE)
    notes: dict[str, list[str]] = {}
    for _, r in pub.iterrows():
        if isinstance(r["note"], str) and r["note"]:
            notes.setdefault(r["note"], []).append(str(r["name"]))
    for note, names in notes.items():
        parts.append(f"{', '.join(names)}: {note}.")
    if len(runs):
        parts.append(
            "Stars: evalkit runs with 95% intervals ("
            + ", ".join(sorted(set(runs["metric"].astype(str))))
            + ")."
        )
    for note in [*result.notes, *extra]:
        note = note.strip()
        parts.append(note[:1].upper() + note[1:] + ("" if note.endswith(".") else "."))
    if unlabelled:
        parts.append(f"Unlabelled for lack of room: {', '.join(unlabelled)}.")
    return " ".join(parts)


def draw_frontier(
    result: FrontierResult,
    *,
    title: str,
    y_label: str,
    x: str = "total",
    subtitle: str = "",
    extra_notes: Sequence[str] = (),
) -> tuple[Figure, ChartInfo]:
    """Draw the chart for a frontier table; returns the figure and what the label placer did."""
    # A Figure on its own Agg canvas: no pyplot, so no global backend switch (safe inside notebooks
    # and servers) and nothing to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    t = result.table
    if not len(t):
        from evalkit.errors import EvalkitError

        raise EvalkitError("no point on this chart has a parameter count; nothing to draw")
    pub = t[t["origin"] == "published"]
    runs = t[t["origin"] == "run"]
    colors = source_colors(pub["source"]) if len(pub) else {}

    # Geometry in inches. The footer's height (legends, caption) is settled after label placement,
    # because the caption names any label that did not fit; the plot keeps its size in inches, so
    # placed labels (offsets in points from data positions) stay where they were put.
    src_entries = []
    for s in dict.fromkeys(pub["source"]):
        # The marker shape already says base / instruct / reasoning: list the rest of each setting once.
        settings = " | ".join(
            dict.fromkeys(_setting_without_kind(v) for v in pub.loc[pub["source"] == s, "setting"])
        )
        src_entries.append((s, "\n".join(textwrap.wrap(settings, 95))))
    width_in, plot_h_in, top_in, xaxis_in = 12.0, 7.0, 0.75, 0.7
    left, right = 0.065, 0.985
    fig = Figure(figsize=(width_in, top_in + plot_h_in + xaxis_in + 3.0), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left, 0.3, right - left, 0.5))

    def layout(footer_in: float) -> float:
        height = top_in + plot_h_in + xaxis_in + footer_in
        fig.set_size_inches(width_in, height)
        ax.set_position((left, (xaxis_in + footer_in) / height, right - left, plot_h_in / height))
        return height

    layout(3.0)

    # Axis limits first: label placement needs final display coordinates.
    xs = t["x"].astype(float)
    lo_y = t[["score", "ci_low"]].min(axis=None, skipna=True)
    hi_y = t[["score", "ci_high"]].max(axis=None, skipna=True)
    span = max(hi_y - lo_y, 5.0)
    metric = str(t["metric"].iloc[0])
    cap = 150.0 if metric == "amc_points" else 100.0
    ax.set_ylim(
        max(0.0, lo_y - 0.10 * span), min(cap, hi_y + 0.12 * span) if hi_y + 0.12 * span < cap else cap
    )
    x_lo, x_hi = xs.min() / 1.9, xs.max() * 2.2
    ax.set_xscale("log")
    ax.set_xlim(x_lo, x_hi)

    # Readable ticks: decades labelled large; 2x/3x/5x labelled small when the range allows.
    decades = [10.0**k for k in range(math.floor(math.log10(x_lo)), math.ceil(math.log10(x_hi)) + 1)]
    major = [d for d in decades if x_lo <= d <= x_hi]
    subs = (2, 3, 5) if math.log10(x_hi / x_lo) < 2.5 else (3,)
    minor_labelled = [d * m for d in decades for m in subs if x_lo <= d * m <= x_hi]
    ax.xaxis.set_major_locator(FixedLocator(major))
    ax.xaxis.set_major_formatter(FuncFormatter(format_params))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)), numticks=50))
    ax.xaxis.set_minor_formatter(
        FuncFormatter(
            lambda v, p: (
                format_params(v) if any(math.isclose(v, m, rel_tol=1e-6) for m in minor_labelled) else ""
            )
        )
    )
    if len(major) + len(minor_labelled) > 14:
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", which="major", labelsize=10)
    ax.tick_params(axis="x", which="minor", labelsize=8, labelcolor="#555555")
    ax.tick_params(axis="y", labelsize=10)
    ax.set_xlabel(
        "total parameters (log scale)" if x == "total" else "active parameters per token (log scale)",
        fontsize=10,
    )
    ax.set_ylabel(y_label, fontsize=10)
    ax.grid(True, which="major", color="#dddddd", lw=0.7)
    ax.grid(True, which="minor", axis="x", color="#f0f0f0", lw=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    # Frontier step line, extended to the right edge: the best score reachable at or below each size.
    f = result.frontier
    fx = [*f["x"].astype(float), x_hi]
    fy = [*f["score"].astype(float), float(f["score"].iloc[-1])]
    ax.step(fx, fy, where="post", color=FRONTIER_COLOR, lw=1.4, ls="--", alpha=0.85, zorder=2)
    step_x, step_y = [fx[0]], [fy[0]]
    for i in range(1, len(fx)):
        step_x += [fx[i], fx[i]]
        step_y += [fy[i - 1], fy[i]]

    # Points.
    ms_pub, ms_run = 42.0, 190.0
    for kind, marker in KIND_MARKERS.items():
        sel = pub[pub["kind"] == kind]
        if not len(sel):
            continue
        on = sel["on_frontier"].astype(bool)
        ax.scatter(
            sel["x"],
            sel["score"],
            s=ms_pub,
            marker=marker,
            c=[colors[s] for s in sel["source"]],
            edgecolors=["#000000" if o else "#ffffff" for o in on],
            linewidths=[1.3 if o else 0.6 for o in on],
            alpha=0.95,
            zorder=4,
        )
    if len(runs):
        yerr = [
            (runs["score"] - runs["ci_low"]).clip(lower=0).fillna(0),
            (runs["ci_high"] - runs["score"]).clip(lower=0).fillna(0),
        ]
        ax.errorbar(
            runs["x"],
            runs["score"],
            yerr=yerr,
            fmt="none",
            ecolor=RUN_COLOR,
            elinewidth=1.2,
            capsize=3.5,
            zorder=4,
        )
        ax.scatter(
            runs["x"],
            runs["score"],
            s=ms_run,
            marker="*",
            c=RUN_COLOR,
            edgecolors="#ffffff",
            linewidths=0.6,
            zorder=5,
        )
    hl = t[t["highlight"].astype(bool)]
    if len(hl):
        ax.scatter(
            hl["x"],
            hl["score"],
            s=420,
            marker="o",
            facecolors="none",
            edgecolors=HIGHLIGHT_COLOR,
            linewidths=2.0,
            zorder=5,
        )

    fig.canvas.draw()
    scale = fig.dpi / 72.0
    obstacles: list[tuple[str, Box]] = []
    radii: dict[str, float] = {}
    for _, r in t.iterrows():
        px, py = ax.transData.transform((float(r["x"]), float(r["score"])))
        radius = (math.sqrt(ms_run) / 2 if r["origin"] == "run" else math.sqrt(ms_pub) / 2 + 1) * scale
        if r["highlight"]:
            radius = math.sqrt(420) / 2 * scale
        radii[str(r["label"])] = radius
        obstacles.append((str(r["label"]), _point_box(px, py, radius)))
        if r["origin"] == "run" and not math.isnan(float(r["ci_low"])):
            _, y0 = ax.transData.transform((float(r["x"]), float(r["ci_low"])))
            _, y1 = ax.transData.transform((float(r["x"]), float(r["ci_high"])))
            obstacles.append((str(r["label"]), (px - 4 * scale, y0 - 1, px + 4 * scale, y1 + 1)))
    soft = _segment_boxes(ax, step_x, step_y)

    # Labels in priority order.
    def style(r: Any) -> dict[str, Any]:
        if r["highlight"]:
            return {"color": HIGHLIGHT_COLOR, "fontweight": "bold"}
        if r["origin"] == "run":
            return {"color": RUN_COLOR, "fontweight": "bold"}
        if r["on_frontier"]:
            return {"color": "#111111", "fontweight": "bold"}
        return {"color": "#666666"}

    # Essential labels first (highlight, runs, frontier), then the rest. Greedy placement depends on
    # the order, so a few orders are tried (most crowded first, by size, by score) and the best kept:
    # fewest labels left out, then the shortest leader lines, fewest crossing the frontier.
    records = t.to_dict("records")
    pix = [tuple(ax.transData.transform((float(r["x"]), float(r["score"])))) for r in records]
    for r, p in zip(records, pix, strict=True):
        r["_crowd"] = sum(1 for q in pix if math.hypot(q[0] - p[0], q[1] - p[1]) < 60 * scale)
    labels = {
        str(r["label"]): _Label(
            str(r["label"]),
            str(r["label"]),
            float(r["x"]),
            float(r["score"]),
            bool(r["highlight"] or r["origin"] == "run" or r["on_frontier"]),
            style(r),
            radii[str(r["label"])],
        )
        for r in records
    }
    rest_orders = [
        lambda r: (-r["_crowd"], float(r["x"])),
        lambda r: (float(r["x"]), -float(r["score"])),
        lambda r: (-float(r["score"]), float(r["x"])),
    ]
    info = None
    for rest in rest_orders:
        ordered = sorted(
            records,
            key=lambda r, rest=rest: (
                not r["highlight"],
                r["origin"] != "run",
                not r["on_frontier"],
                *rest(r),
            ),
        )
        attempt = _place_labels(ax, fig, [labels[str(r["label"])] for r in ordered], obstacles, soft)
        if info is None or attempt.badness < info.badness:
            info = attempt
    _draw_labels(ax, fig, info)

    # Footer: marker legend, source legend (colour + setting), caption.
    handles = [Line2D([], [], color=FRONTIER_COLOR, ls="--", lw=1.4, label="Pareto frontier")]
    for kind, marker in KIND_MARKERS.items():
        if (pub["kind"] == kind).any():
            handles.append(
                Line2D(
                    [], [], ls="none", marker=marker, color="#888888", markersize=7, label=KIND_NAMES[kind]
                )
            )
    if len(pub):
        first = next(m for k, m in KIND_MARKERS.items() if (pub["kind"] == k).any())
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker=first,
                markerfacecolor="#bbbbbb",
                markeredgecolor="#000000",
                markeredgewidth=1.3,
                markersize=7,
                label="on the frontier",
            )
        )
    if len(runs):
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="*",
                color=RUN_COLOR,
                markersize=12,
                label="evalkit run (95% interval)",
            )
        )
    if len(hl):
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                markerfacecolor="none",
                markeredgecolor=HIGHLIGHT_COLOR,
                markeredgewidth=2,
                markersize=11,
                label="highlighted",
            )
        )
    marker_cols = min(len(handles), 4)
    marker_leg_in = 0.28 * math.ceil(len(handles) / marker_cols) + 0.1
    # Legend columns are laid out independently: the taller column sets the height.
    half = math.ceil(len(src_entries) / 2)
    columns = [src_entries[:half], src_entries[half:]]
    src_leg_in = 0.0
    if src_entries:
        tallest = max(sum(1 + setting.count("\n") + 1 for _, setting in col) for col in columns if col)
        src_leg_in = tallest * 8 * 1.25 / 72 + half * 0.55 * 8 / 72 + 0.35
    held = cutoff_notes(str(pub["benchmark"].iloc[0]), pub) if len(pub) else []
    caption = _caption(result, x, [*held, *extra_notes], info.unlabelled)
    lines = textwrap.wrap(caption, width=175)
    caption_in = len(lines) * 8 * 1.35 / 72 + 0.3
    height = layout(marker_leg_in + src_leg_in + caption_in)
    fig.suptitle(title, x=left, ha="left", y=1 - 0.15 / height, va="top", fontsize=13, fontweight="bold")
    if subtitle:
        fig.text(left, 1 - 0.47 / height, subtitle, ha="left", va="top", fontsize=9.5, color="#444444")
    y_marker = (caption_in + src_leg_in + marker_leg_in) / height
    leg1 = fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(left - 0.01, y_marker),
        ncol=marker_cols,
        frameon=False,
        fontsize=9,
        handletextpad=0.4,
        columnspacing=1.6,
    )
    fig.add_artist(leg1)
    if src_entries:
        src_handles = [
            Line2D([], [], ls="none", marker="o", color=colors[s], markersize=8, label=f"{s}\n{setting}")
            for s, setting in src_entries
        ]
        fig.legend(
            handles=src_handles,
            loc="upper left",
            bbox_to_anchor=(left - 0.01, (caption_in + src_leg_in) / height),
            ncol=2,
            frameon=False,
            fontsize=8,
            handletextpad=0.4,
            columnspacing=1.5,
            labelspacing=0.55,
            title="Source of each published number (and its evaluation setting)",
            title_fontsize=8.5,
            alignment="left",
        )
    fig.text(
        left,
        (caption_in - 0.1) / height,
        "\n".join(lines),
        ha="left",
        va="top",
        fontsize=8,
        color="#333333",
        linespacing=1.35,
    )
    return fig, info


def save_figure(fig: Figure, out: str | Path) -> list[Path]:
    """PNG and SVG next to each other (``out`` without its suffix), deterministic (no dates embedded)."""
    import matplotlib

    stem = Path(out)
    if stem.suffix.lower() in (".png", ".svg", ".csv"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "evalkit"}):
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return [png, svg]


def write_table(result: FrontierResult, out: str | Path) -> Path:
    """The table behind the chart: every point (including ones without a parameter count), as CSV."""
    import pandas as pd

    from evalkit.report.frontier import TABLE_COLUMNS

    stem = Path(out)
    if stem.suffix.lower() in (".png", ".svg", ".csv"):
        stem = stem.with_suffix("")
    path = stem.with_suffix(".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    both = pd.concat([result.table, result.missing], ignore_index=True)[TABLE_COLUMNS]
    both = (
        both.assign(_run=both["origin"] != "run")
        .sort_values(["_run", "x", "score"], kind="stable", na_position="last")
        .drop(columns="_run")
    )
    both.to_csv(path, index=False, float_format="%.4g", lineterminator="\n")
    return path


def cutoff_notes(benchmark: str, points: pd.DataFrame) -> list[str]:
    """For a benchmark held on a known day: which models' training cutoff (or release) came before it."""
    from evalkit.catalog import load_models

    held = BENCHMARK_DATES.get(benchmark)
    if held is None or not len(points):
        return []
    by_id = {m.id: m for m in load_models()}
    after, before = [], []
    for mid, name in zip(points["model"], points["name"], strict=True):
        entry = by_id.get(mid)
        if entry is None:
            continue
        cut = entry.cutoff()
        if cut is None:
            continue
        word = "release" if cut.fallback else "cutoff"
        (after if cut.date < held else before).append(f"{name} ({word} {cut.date.isoformat()})")
    notes = [f"{BENCHMARK_TITLES.get(benchmark, benchmark)} was first public on {held.isoformat()}"]
    if after:
        notes.append(
            f"after the training cutoff (or release, where no cutoff is published) of {', '.join(after)}"
        )
    if before:
        notes.append(f"but before that of {', '.join(before)}")
    return ["; ".join(notes) + "."]


def render_frontier(
    task: str,
    out: str | Path,
    runs: pd.DataFrame | None = None,
    published: bool = True,
    x: str = "total",
    split: str = "all",
    kinds: Iterable[str] | None = None,
    highlight: str | None = None,
) -> tuple[FrontierResult, ChartInfo]:
    """Build the table, draw, and write PNG, SVG and CSV for one task."""
    from evalkit.report.frontier import DEFAULT_KINDS, frontier_table

    result = frontier_table(
        task,
        runs=runs,
        published=published,
        x=x,
        split=split,
        kinds=kinds or DEFAULT_KINDS,
        highlight=highlight,
    )
    t = result.table
    pub = t.loc[t["origin"] == "published", "benchmark"]
    bench = str(pub.iloc[0]) if len(pub) else task
    metric = str(t["metric"].iloc[0]) if len(t) else "accuracy"
    split_txt = "" if split == "all" else f", {split} items only"
    title = f"{BENCHMARK_TITLES.get(bench, bench)}: score versus {'total' if x == 'total' else 'active'} parameters{split_txt}"
    n_pub = int((t["origin"] == "published").sum())
    n_runs = int((t["origin"] == "run").sum())
    parts = []
    if n_pub:
        parts.append(
            f"published scores of {n_pub} models ({', '.join(sorted(set(t.loc[t['origin'] == 'published', 'kind'])))})"
        )
    if n_runs:
        parts.append(f"{n_runs} evalkit run{'s' if n_runs > 1 else ''} of {task}")
    subtitle = "; ".join(parts)
    fig, info = draw_frontier(result, title=title, y_label=score_label(bench, metric), x=x, subtitle=subtitle)
    info.paths = [*save_figure(fig, out), write_table(result, out)]
    return result, info


def render_all(
    out_dir: str | Path = "results/charts",
    runs: pd.DataFrame | None = None,
    min_models: int = 5,
) -> list[tuple[str, FrontierResult, ChartInfo]]:
    """Every chart the repository shows: each published benchmark with at least ``min_models`` models
    (x = total parameters), and an active-parameter version wherever a mixture-of-experts model appears."""
    from evalkit.report.frontier import DEFAULT_KINDS
    from evalkit.catalog.published import load_published

    df = load_published()
    df = df[df["kind"].isin(DEFAULT_KINDS)]
    done = []
    for bench in sorted(set(df["benchmark"])):
        if df.loc[df["benchmark"] == bench, "model"].nunique() < min_models:
            continue
        result, info = render_frontier(bench, Path(out_dir) / f"{bench}_frontier", runs=runs)
        done.append((f"{bench}_frontier", result, info))
        t = result.table
        if (t["params_active"].astype(float) < t["params_total"].astype(float)).any():
            result, info = render_frontier(
                bench, Path(out_dir) / f"{bench}_frontier_active", runs=runs, x="active"
            )
            done.append((f"{bench}_frontier_active", result, info))
    return done


def draw_cutoff_comparison(
    rows: pd.DataFrame,
    *,
    title: str,
    before: str,
    after: str,
    x_label: str,
    caption: str = "",
) -> Figure:
    """A dumbbell per model: the score on items it may have seen in training (``before``) and on items
    published after its cutoff (``after``), with intervals where known and the difference printed.

    ``rows`` columns: label, before, before_low, before_high, after, after_low, after_high (the
    interval columns may be NaN). A large drop after the cutoff is a contamination signal.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n = len(rows)
    cap_in = 0.17 * len(textwrap.wrap(caption, 140)) + 0.3 if caption else 0.2
    height = 1.45 + 0.45 * n + cap_in
    fig = Figure(figsize=(9.0, height), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.27, (cap_in + 0.45) / height, 0.62, (0.45 * n + 0.3) / height))
    fig.suptitle(title, x=0.02, ha="left", y=1 - 0.12 / height, va="top", fontsize=11.5, fontweight="bold")
    for i, r in enumerate(rows.itertuples(index=False)):
        y = n - 1 - i
        ax.plot([r.before, r.after], [y, y], color="#999999", lw=2, zorder=1)
        for val, lo, hi, face in (
            (r.before, r.before_low, r.before_high, "white"),
            (r.after, r.after_low, r.after_high, "#1f77b4"),
        ):
            if lo == lo and hi == hi:  # not NaN
                ax.errorbar(
                    [val],
                    [y],
                    xerr=[[val - lo], [hi - val]],
                    fmt="none",
                    ecolor="#555555",
                    capsize=3,
                    lw=1,
                    zorder=2,
                )
            ax.scatter([val], [y], s=60, facecolors=face, edgecolors="#1f77b4", linewidths=1.5, zorder=3)
        gap = r.after - r.before
        ax.annotate(
            f"{gap:+.1f}",
            xy=(max(r.before, r.after), y),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
            color="#b2182b" if gap < 0 else "#2166ac",
        )
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(rows["label"])[::-1], fontsize=9)
    ax.set_ylim(-0.6, n - 0.4)
    lo = min(rows["before"].min(), rows["after"].min())
    hi = max(rows["before"].max(), rows["after"].max())
    ax.set_xlim(max(0, lo - 0.12 * (hi - lo + 5)), hi + 0.18 * (hi - lo + 5))
    ax.set_xlabel(x_label, fontsize=9.5)
    ax.grid(True, axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            markerfacecolor="white",
            markeredgecolor="#1f77b4",
            markersize=7,
            label=before,
        ),
        Line2D([], [], ls="none", marker="o", color="#1f77b4", markersize=7, label=after),
    ]
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.02, 1 - 0.42 / height),
        ncol=2,
        frameon=False,
        fontsize=8.5,
    )
    if caption:
        fig.text(
            0.02,
            (cap_in - 0.1) / height,
            "\n".join(textwrap.wrap(caption, 140)),
            ha="left",
            va="top",
            fontsize=7.5,
            color="#333333",
        )
    return fig
