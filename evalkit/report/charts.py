"""Frontier charts (matplotlib, Agg): score versus parameters on a log axis, the Pareto frontier as a
step line, interval bars on the user's runs, published numbers coloured by their source, and labels
placed so that none overlaps another label or any point.

``draw_frontier`` sets up the axes, draws the frontier line and the points, hands the labels to the
placer (:mod:`evalkit.report.labels`: pure box geometry, in display pixels) and draws them where it
put them, then adds the legends and the caption. A label that fits nowhere is left out and named in
the caption, so nothing is hidden silently.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.report.labels import (
    Box,
    LabelLayout,
    LabelSpec,
    Placement,
    place_labels,
    point_box,
    polyline_boxes,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from evalkit.report.frontier import FrontierResult

# First public day of benchmarks held on a known day (a contest), to say which models could not have
# seen them. Not read from the task: a task's `date` is an upper bound for undated items (MATH-500 is
# dated at the MATH release, its problems are older), so it cannot say "unseen before"; amc_2024's
# items carry their own contest days, in a data file that may be absent. tests/test_frontier.py checks
# this day against that file when it is present.
HELD_ON = {"amc_2024": dt.date(2024, 11, 6)}
BENCHMARK_TITLES = {
    "mmlu_pro": "MMLU-Pro",
    "math": "MATH (5,000 problems)",
    "math500": "MATH-500",
    "amc_2024": "AMC 10/12, November 2024",
    "aime_2024": "AIME 2024 (30 problems)",
    "aime_2025": "AIME 2025 (30 problems)",
    "aime_2026": "AIME 2026 (30 problems)",
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
BAND_COLOR = "#c6dbef"
FLAG_COLOR = "#d62728"
# P(on frontier) is printed after a label when it is neither about 0 nor about 1.
P_SHOWN = (0.05, 0.995)
FLAG_TEXT = " [frontier pre-cutoff only]"
LABEL_FONTSIZE = 7.0
DPI = 150


@dataclass
class ChartInfo:
    """What was drawn: files, where each label went (display pixels), and labels that did not fit."""

    paths: list[Path] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list, repr=False)
    unlabelled: list[str] = field(default_factory=list)
    forced_overlaps: list[str] = field(default_factory=list)
    badness: float = 0.0  # how ugly the placement is: labels left out, long leaders, lines crossed
    leaders_across_frontier: int = 0

    @classmethod
    def of(cls, layout: LabelLayout) -> ChartInfo:
        return cls(
            placements=layout.placements,
            unlabelled=layout.unlabelled,
            forced_overlaps=layout.forced_overlaps,
            badness=layout.badness,
            leaders_across_frontier=layout.leaders_across_soft,
        )

    @property
    def label_boxes(self) -> dict[str, Box]:
        return {p.key: p.box for p in self.placements}


def format_params(v: float, _pos: Any = None) -> str:
    """Billions of parameters as a short tick label: 0.1 -> 100M, 1 -> 1B, 30 -> 30B, 1000 -> 1T."""
    if v <= 0:
        return ""
    if v >= 1000:
        return f"{v / 1000:g}T"
    if v >= 1:
        return f"{v:g}B"
    return f"{v * 1000:g}M"


def format_tokens(v: float, _pos: Any = None) -> str:
    """Token counts as a short tick label: 300 -> 300, 2000 -> 2k, 1.5e6 -> 1.5M."""
    if v <= 0:
        return ""
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


X_LABELS = {
    "total": "total parameters (log scale)",
    "active": "active parameters per token (log scale)",
    "tokens": "mean generated tokens per answer, reasoning included (log scale)",
}


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


# --- the chart --------------------------------------------------------------------------------


def _caption(result: FrontierResult, x: str, extra: Sequence[str], unlabelled: Sequence[str]) -> str:
    from evalkit.catalog.published import SOURCE_RULE

    t = result.table
    parts = [
        "Step line: the Pareto frontier (no other model has fewer or equally many parameters and a higher or "
        "equal score). x: "
        + {
            "total": "total parameters (mixture-of-experts models count every expert)",
            "active": "parameters active per token (dense models: all)",
            "tokens": "mean generated tokens per answer (reasoning included), from the run summaries",
        }[x]
        + ", log scale.",
    ]
    parts += _uncertainty_caption(result)
    pub = t[t["origin"] == "published"]
    runs = t[t["origin"] == "run"]
    if len(pub) and pub["source"].nunique() > 1:
        parts.append(
            "Published numbers come from different evaluation setups (colour = source, setting listed "
            "under it) and are not strictly comparable with one another or with evalkit runs."
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
        parts.append(f"{', '.join(dict.fromkeys(names))}: {note}.")
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


def _uncertainty_caption(result: FrontierResult) -> list[str]:
    """What the band and the P values are, and how each kind of point was redrawn."""
    u = result.uncertainty
    if u is None:
        return []
    t = result.table
    pub = t[t["origin"] == "published"]
    from evalkit.report.frontier_uncertainty import BENCHMARK_SIZES

    sized = pub["benchmark"].map(lambda b: b in BENCHMARK_SIZES).all() if len(pub) else True
    how = ["evalkit runs by resampling items and each item's repeats"] if (t["origin"] == "run").any() else []
    if len(pub):
        how.append(
            "published scores as Binomial(n, p)/n over the benchmark's n items"
            if sized
            else "published scores held fixed (no known item count)"
        )
    return [
        f"Shaded band: 2.5-97.5% envelope of the frontier over {u.draws} bootstrap draws (seed {u.seed}; "
        + "; ".join(how)
        + "). P=: share of draws a point is on the frontier, shown between "
        + f"{P_SHOWN[0]:g} and {P_SHOWN[1]:g}."
    ]


def _dumbbells(ax: Any, result: FrontierResult) -> None:
    """Post-cutoff charts: each model with both splits as a line from its pre-cutoff score (hollow)
    to its post-cutoff one, at its size."""
    bells = result.dumbbells
    if bells is None or not len(bells):
        return
    for _, b in bells.iterrows():
        color = FLAG_COLOR if b["frontier_pre_cutoff_only"] else "#555555"
        ax.plot([b["x"], b["x"]], [b["pre"], b["post"]], color=color, lw=1.6, alpha=0.8, zorder=3)
        ax.scatter([b["x"]], [b["pre"]], s=60, marker="o", facecolors="white", edgecolors=color, zorder=4)


# Marker areas (points^2) of published points, own runs and the ring around a highlighted model.
MARKER_PUBLISHED, MARKER_RUN, MARKER_HIGHLIGHT = 42.0, 190.0, 420.0


# The figure's geometry in inches (and the plot's left and right edges as figure fractions).
WIDTH_IN, PLOT_IN, TOP_IN, XAXIS_IN = 12.0, 7.0, 0.75, 0.7
LEFT, RIGHT = 0.065, 0.985


@dataclass
class _Frame:
    """The figure and its plot. The plot keeps its size in inches when the footer (legends, caption)
    is settled after label placement, so placed labels (offsets in points from data positions) stay
    where they were put."""

    fig: Figure
    ax: Any

    @classmethod
    def new(cls, footer_in: float = 3.0) -> _Frame:
        # A Figure on its own Agg canvas: no pyplot, so no global backend switch (safe inside notebooks
        # and servers) and nothing to close.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(WIDTH_IN, TOP_IN + PLOT_IN + XAXIS_IN + footer_in), dpi=DPI)
        FigureCanvasAgg(fig)
        frame = cls(fig, fig.add_axes((LEFT, 0.3, RIGHT - LEFT, 0.5)))
        frame.fit(footer_in)
        return frame

    def fit(self, footer_in: float) -> float:
        """Make room for a footer this tall; returns the figure height in inches."""
        height = TOP_IN + PLOT_IN + XAXIS_IN + footer_in
        self.fig.set_size_inches(WIDTH_IN, height)
        self.ax.set_position((LEFT, (XAXIS_IN + footer_in) / height, RIGHT - LEFT, PLOT_IN / height))
        return height


def _axes(ax: Any, t: pd.DataFrame, x: str, y_label: str) -> float:
    """Limits (labels are placed in final display coordinates, so these come first), axis labels and
    grid; returns the right end of the x axis."""
    xs = t["x"].astype(float)
    ys = t[["score", "ci_low", "ci_high", "pre_cutoff_score"]].astype(float)
    lo_y = ys.min(axis=None, skipna=True)
    hi_y = ys.max(axis=None, skipna=True)
    span = max(hi_y - lo_y, 5.0)
    cap = 150.0 if str(t["metric"].iloc[0]) == "amc_points" else 100.0
    ax.set_ylim(max(0.0, lo_y - 0.10 * span), min(cap, hi_y + 0.12 * span))
    x_lo, x_hi = xs.min() / 1.9, xs.max() * 2.2
    ax.set_xscale("log")
    ax.set_xlim(x_lo, x_hi)
    _log_ticks(ax, x_lo, x_hi, format_tokens if x == "tokens" else format_params)
    ax.tick_params(axis="x", which="major", labelsize=10)
    ax.tick_params(axis="x", which="minor", labelsize=8, labelcolor="#555555")
    ax.tick_params(axis="y", labelsize=10)
    ax.set_xlabel(X_LABELS[x], fontsize=10)
    ax.set_ylabel(y_label, fontsize=10)
    ax.grid(True, which="major", color="#dddddd", lw=0.7)
    ax.grid(True, which="minor", axis="x", color="#f0f0f0", lw=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return x_hi


def _log_ticks(ax: Any, x_lo: float, x_hi: float, fmt: Any = format_params) -> None:
    """Readable ticks: decades labelled large; 2x/3x/5x labelled small when the range allows."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    decades = [10.0**k for k in range(math.floor(math.log10(x_lo)), math.ceil(math.log10(x_hi)) + 1)]
    major = [d for d in decades if x_lo <= d <= x_hi]
    subs = (2, 3, 5) if math.log10(x_hi / x_lo) < 2.5 else (3,)
    minor_labelled = [d * m for d in decades for m in subs if x_lo <= d * m <= x_hi]

    def minor_label(v: float, _pos: Any) -> str:
        return fmt(v) if any(math.isclose(v, m, rel_tol=1e-6) for m in minor_labelled) else ""

    ax.xaxis.set_major_locator(FixedLocator(major))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)), numticks=50))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor_label))
    if len(major) + len(minor_labelled) > 14:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _frontier_line(ax: Any, result: FrontierResult, x_hi: float) -> list[tuple[float, float]]:
    """The frontier as a step line, extended to the right edge: the best score reachable at or below
    each size. Returns the step line's corners (data coordinates)."""
    f = result.frontier
    fx = [*f["x"].astype(float), x_hi]
    fy = [*f["score"].astype(float), float(f["score"].iloc[-1])]
    u = result.uncertainty
    if u is not None and u.band_x:
        bx = [*u.band_x, x_hi]
        lo, hi = [*u.band_low, u.band_low[-1]], [*u.band_high, u.band_high[-1]]
        ax.fill_between(bx, lo, hi, step="post", color=BAND_COLOR, alpha=0.45, lw=0, zorder=1)
    ax.step(fx, fy, where="post", color=FRONTIER_COLOR, lw=1.4, ls="--", alpha=0.85, zorder=2)
    corners = [(fx[0], fy[0])]
    for i in range(1, len(fx)):
        corners += [(fx[i], fy[i - 1]), (fx[i], fy[i])]
    return corners


def _points(ax: Any, t: pd.DataFrame, colors: dict[str, str]) -> None:
    """Published points (shape = kind, colour = source, black edge = on the frontier), own runs as
    stars with interval bars, and a ring around the highlighted model."""
    pub, runs, hl = t[t["origin"] == "published"], t[t["origin"] == "run"], t[t["highlight"].astype(bool)]
    for kind, marker in KIND_MARKERS.items():
        sel = pub[pub["kind"] == kind]
        if not len(sel):
            continue
        on = sel["on_frontier"].astype(bool)
        ax.scatter(
            sel["x"],
            sel["score"],
            s=MARKER_PUBLISHED,
            marker=marker,
            c=[colors[s] for s in sel["source"]],
            edgecolors=["#000000" if o else "#ffffff" for o in on],
            linewidths=[1.3 if o else 0.6 for o in on],
            alpha=0.95,
            zorder=4,
        )
    if len(runs):
        _run_points(ax, runs)
    if len(hl):
        ring = {"facecolors": "none", "edgecolors": HIGHLIGHT_COLOR, "linewidths": 2.0}
        ax.scatter(hl["x"], hl["score"], s=MARKER_HIGHLIGHT, marker="o", zorder=5, **ring)


def _run_points(ax: Any, runs: pd.DataFrame) -> None:
    """Own runs: black stars with their 95% interval bars."""
    yerr = [
        (runs["score"] - runs["ci_low"]).clip(lower=0).fillna(0),
        (runs["ci_high"] - runs["score"]).clip(lower=0).fillna(0),
    ]
    bars = {"fmt": "none", "ecolor": RUN_COLOR, "elinewidth": 1.2, "capsize": 3.5}
    ax.errorbar(runs["x"], runs["score"], yerr=yerr, zorder=4, **bars)
    star = {"marker": "*", "c": RUN_COLOR, "edgecolors": "#ffffff", "linewidths": 0.6}
    ax.scatter(runs["x"], runs["score"], s=MARKER_RUN, zorder=5, **star)


def _obstacles(ax: Any, t: pd.DataFrame, px_per_pt: float) -> tuple[list[tuple[str, Box]], dict[str, float]]:
    """Every point's marker and every run's interval bar as boxes keyed by the point's label, and
    each marker's radius (display pixels)."""
    obstacles: list[tuple[str, Box]] = []
    radii: dict[str, float] = {}
    for _, r in t.iterrows():
        key = str(r["label"])
        px, py = ax.transData.transform((float(r["x"]), float(r["score"])))
        area = MARKER_RUN if r["origin"] == "run" else MARKER_PUBLISHED
        radius = (math.sqrt(area) / 2 + (0 if r["origin"] == "run" else 1)) * px_per_pt
        if r["highlight"]:
            radius = math.sqrt(MARKER_HIGHLIGHT) / 2 * px_per_pt
        radii[key] = radius
        obstacles.append((key, point_box((px, py), radius)))
        if r["origin"] == "run" and not math.isnan(float(r["ci_low"])):
            _, y0 = ax.transData.transform((float(r["x"]), float(r["ci_low"])))
            _, y1 = ax.transData.transform((float(r["x"]), float(r["ci_high"])))
            obstacles.append((key, (px - 4 * px_per_pt, y0 - 1, px + 4 * px_per_pt, y1 + 1)))
    return obstacles, radii


def _label_style(r: dict[str, Any]) -> dict[str, Any]:
    if r["highlight"]:
        return {"color": HIGHLIGHT_COLOR, "fontweight": "bold"}
    if r["origin"] == "run":
        return {"color": RUN_COLOR, "fontweight": "bold"}
    if r["on_frontier"]:
        return {"color": "#111111", "fontweight": "bold"}
    return {"color": "#666666"}


@dataclass(frozen=True)
class _PointLabel:
    """A label as drawn: the geometry to place it, and its point and style to draw it."""

    spec: LabelSpec
    x: float  # the point, in data coordinates
    y: float
    style: dict[str, Any]
    crowd: int  # points within 60 pt of this one (itself included)
    text: str = ""  # what is drawn: the label, with P(on frontier) and the pre-cutoff flag


def label_text(r: dict[str, Any]) -> str:
    """A point's label as drawn: its name, then P(on frontier) where uncertain, then the flag of a
    model that is on the frontier of pre-cutoff items only."""
    text = str(r["label"])
    p = r.get("p_on_frontier")
    if p is not None and p == p and P_SHOWN[0] <= float(p) < P_SHOWN[1]:
        text += f" P={float(p):.2f}"
    if r.get("frontier_pre_cutoff_only") is True:
        text += FLAG_TEXT
    return text


def _point_labels(fig: Figure, ax: Any, t: pd.DataFrame, radii: dict[str, float]) -> dict[str, _PointLabel]:
    """Each point's label, measured in the renderer (display pixels)."""
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    records = t.to_dict("records")
    pixels = [tuple(ax.transData.transform((float(r["x"]), float(r["score"])))) for r in records]
    out = {}
    for r, p in zip(records, pixels, strict=True):
        key, style, text = str(r["label"]), _label_style(r), label_text(r)
        probe = ax.text(0, 0, text, fontsize=LABEL_FONTSIZE, **style)
        box = probe.get_window_extent(renderer)
        probe.remove()
        essential = bool(r["highlight"] or r["origin"] == "run" or r["on_frontier"])
        spec = LabelSpec(key, p, box.width, box.height, radii[key], essential)
        crowd = sum(1 for q in pixels if math.hypot(q[0] - p[0], q[1] - p[1]) < 60 * px_per_pt)
        out[key] = _PointLabel(spec, float(r["x"]), float(r["score"]), style, crowd, text)
    return out


def _label_orders(t: pd.DataFrame, labels: dict[str, _PointLabel]) -> list[list[str]]:
    """Orders to place labels in: essential ones first (highlight, runs, frontier), then the rest,
    most crowded first, or by size, or by score. Greedy placement depends on the order, and no one
    order wins on every chart (the MMLU-Pro chart needs "by size" to keep leader lines off the
    frontier line), so each is tried and the least bad placement kept."""
    records = t.to_dict("records")
    rests = [
        lambda r: (-labels[str(r["label"])].crowd, float(r["x"])),
        lambda r: (float(r["x"]), -float(r["score"])),
        lambda r: (-float(r["score"]), float(r["x"])),
    ]
    orders = []
    for rest in rests:
        ranked = sorted(
            records,
            key=lambda r, rest=rest: (
                not r["highlight"],
                r["origin"] != "run",
                not r["on_frontier"],
                *rest(r),
            ),
        )
        orders.append([str(r["label"]) for r in ranked])
    return orders


def _place(
    frame: _Frame, t: pd.DataFrame, corners: list[tuple[float, float]]
) -> tuple[LabelLayout, dict[str, _PointLabel]]:
    """Place every label clear of every marker, bar and label, preferring to keep off the frontier
    line (a soft obstacle); the least bad of the orders tried."""
    fig, ax = frame.fig, frame.ax
    fig.canvas.draw()
    px_per_pt = fig.dpi / 72.0
    obstacles, radii = _obstacles(ax, t, px_per_pt)
    soft = polyline_boxes([tuple(ax.transData.transform(c)) for c in corners])
    labels = _point_labels(fig, ax, t, radii)
    axbox = ax.get_window_extent(fig.canvas.get_renderer())
    area = (axbox.x0 + 2, axbox.y0 + 2, axbox.x1 - 2, axbox.y1 - 2)
    best: LabelLayout | None = None
    for order in _label_orders(t, labels):
        layout = place_labels([labels[k].spec for k in order], area, obstacles, soft, px_per_pt)
        if best is None or layout.badness < best.badness:
            best = layout
    assert best is not None
    return best, labels


def _draw_labels(ax: Any, fig: Figure, layout: LabelLayout, labels: dict[str, _PointLabel]) -> None:
    px_per_pt = fig.dpi / 72.0
    for p in layout.placements:
        lab = labels[p.key]
        arrow = None
        if p.leader is not None:
            shrink = lab.spec.marker_radius / px_per_pt + 1
            arrow = {"arrowstyle": "-", "lw": 0.5, "color": "#999999", "shrinkA": 0, "shrinkB": shrink}
        ax.annotate(
            lab.text or p.key,
            xy=(lab.x, lab.y),
            xytext=(p.direction[0] * p.offset_pt, p.direction[1] * p.offset_pt),
            textcoords="offset points",
            ha=p.ha,
            va=p.va,
            fontsize=LABEL_FONTSIZE,
            arrowprops=arrow,
            zorder=6,
            # A light backing keeps a label readable where it crosses the frontier line or the grid.
            bbox={"boxstyle": "square,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.8},
            **lab.style,
        )


def _mark(**style: Any) -> Any:
    """A legend entry that is a marker alone."""
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="none", **style)


def _legend_handles(t: pd.DataFrame) -> list[Any]:
    """The marker legend: the frontier line, each published kind shown, and the run / highlight marks."""
    from matplotlib.lines import Line2D

    pub = t[t["origin"] == "published"]
    kinds = [k for k in KIND_MARKERS if (pub["kind"] == k).any()]
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=FRONTIER_COLOR, ls="--", lw=1.4, label="Pareto frontier")]
    if t["p_on_frontier"].notna().any():
        handles.append(Patch(color=BAND_COLOR, alpha=0.45, label="frontier band (95%, bootstrap)"))
    if t["pre_cutoff_score"].notna().any():
        handles.append(
            Line2D([], [], color="#555555", marker="o", markerfacecolor="white", label="pre-cutoff score")
        )
    for kind in kinds:
        handles.append(
            _mark(marker=KIND_MARKERS[kind], color="#888888", markersize=7, label=KIND_NAMES[kind])
        )
    if len(pub):
        on_frontier = {"markerfacecolor": "#bbbbbb", "markeredgecolor": "#000000", "markeredgewidth": 1.3}
        handles.append(
            _mark(marker=KIND_MARKERS[kinds[0]], markersize=7, label="on the frontier", **on_frontier)
        )
    if (t["origin"] == "run").any():
        handles.append(_mark(marker="*", color=RUN_COLOR, markersize=12, label="evalkit run (95% interval)"))
    if t["highlight"].astype(bool).any():
        ring = {"markerfacecolor": "none", "markeredgecolor": HIGHLIGHT_COLOR, "markeredgewidth": 2}
        handles.append(_mark(marker="o", markersize=11, label="highlighted", **ring))
    return handles


def _source_entries(pub: pd.DataFrame) -> list[tuple[str, str]]:
    """(source, its settings wrapped) for the source legend. The marker shape already says base /
    instruct / reasoning, so each setting is listed once without it."""
    entries = []
    for s in dict.fromkeys(pub["source"]):
        settings = " | ".join(
            dict.fromkeys(_setting_without_kind(v) for v in pub.loc[pub["source"] == s, "setting"])
        )
        entries.append((s, "\n".join(textwrap.wrap(settings, 80))))
    return entries


def _footer_heights(
    handles: Sequence[Any], src_entries: Sequence[tuple[str, str]], lines: int
) -> list[float]:
    """Heights in inches of the marker legend, the source legend and a caption of ``lines`` lines."""
    marker_cols = min(len(handles), 4)
    marker_leg_in = 0.28 * math.ceil(len(handles) / marker_cols) + 0.1
    # Legend columns are laid out independently: the taller column sets the height.
    half = math.ceil(len(src_entries) / 2)
    columns = [src_entries[:half], src_entries[half:]]
    src_leg_in = 0.0
    if src_entries:
        tallest = max(
            sum(len(textwrap.wrap(src, 80)) + setting.count("\n") + 1 for src, setting in col)
            for col in columns
            if col
        )
        src_leg_in = tallest * 8 * 1.25 / 72 + half * 0.55 * 8 / 72 + 0.35
    caption_in = lines * 8 * 1.35 / 72 + 0.3
    return [marker_leg_in, src_leg_in, caption_in]


def _footer(
    frame: _Frame, t: pd.DataFrame, colors: dict[str, str], caption: str, title: str, subtitle: str
) -> None:
    """Title and subtitle above the plot; below it the marker legend, the source legend and the
    caption, the figure grown to hold them."""
    fig = frame.fig
    handles = _legend_handles(t)
    src_entries = _source_entries(t[t["origin"] == "published"])
    lines = textwrap.wrap(caption, width=175)
    marker_leg_in, src_leg_in, caption_in = _footer_heights(handles, src_entries, len(lines))
    height = frame.fit(marker_leg_in + src_leg_in + caption_in)
    fig.suptitle(title, x=LEFT, ha="left", y=1 - 0.15 / height, va="top", fontsize=13, fontweight="bold")
    if subtitle:
        fig.text(LEFT, 1 - 0.47 / height, subtitle, ha="left", va="top", fontsize=9.5, color="#444444")
    marker_legend = fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(LEFT - 0.01, (caption_in + src_leg_in + marker_leg_in) / height),
        ncol=min(len(handles), 4),
        frameon=False,
        fontsize=9,
        handletextpad=0.4,
        columnspacing=1.6,
    )
    fig.add_artist(marker_legend)
    if src_entries:
        _source_legend(fig, src_entries, colors, (caption_in + src_leg_in) / height)
    fig.text(
        LEFT,
        (caption_in - 0.1) / height,
        "\n".join(lines),
        ha="left",
        va="top",
        fontsize=8,
        color="#333333",
        linespacing=1.35,
    )


def _source_legend(
    fig: Figure, entries: Sequence[tuple[str, str]], colors: dict[str, str], top: float
) -> None:
    """Each source's colour, with its evaluation setting under its name, in two columns."""
    handles = [
        _mark(marker="o", color=colors[s], markersize=8, label="\n".join([*textwrap.wrap(s, 80), setting]))
        for s, setting in entries
    ]
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(LEFT - 0.01, top),
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
    t = result.table
    if not len(t):
        from evalkit.errors import EvalkitError

        raise EvalkitError("no point on this chart has a parameter count; nothing to draw")
    pub = t[t["origin"] == "published"]
    colors = source_colors(pub["source"]) if len(pub) else {}
    frame = _Frame.new()
    x_hi = _axes(frame.ax, t, x, y_label)
    corners = _frontier_line(frame.ax, result, x_hi)
    _dumbbells(frame.ax, result)
    _points(frame.ax, t, colors)
    layout, labels = _place(frame, t, corners)
    _draw_labels(frame.ax, frame.fig, layout, labels)
    held = cutoff_notes(str(pub["benchmark"].iloc[0]), pub) if len(pub) else []
    caption = _caption(result, x, [*held, *extra_notes], layout.unlabelled)
    _footer(frame, t, colors, caption, title, subtitle)
    return frame.fig, ChartInfo.of(layout)


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

    held = HELD_ON.get(benchmark)
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
    released_from: dt.date | None = None,
    draws: int | None = None,
    seed: int | None = None,
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
        released_from=released_from,
        draws=draws,
        seed=seed,
    )
    t = result.table
    pub = t.loc[t["origin"] == "published", "benchmark"]
    bench = str(pub.iloc[0]) if len(pub) else task
    metric = str(t["metric"].iloc[0]) if len(t) else "accuracy"
    split_txt = "" if split == "all" else f", {split} items only"
    what = "mean generated tokens" if x == "tokens" else f"{x} parameters"
    title = f"{BENCHMARK_TITLES.get(bench, bench)}: score versus {what}{split_txt}"
    n_pub = int((t["origin"] == "published").sum())
    n_runs = int((t["origin"] == "run").sum())
    parts = []
    if n_pub:
        kinds = ", ".join(sorted(set(t.loc[t["origin"] == "published", "kind"])))
        parts.append(f"published scores of {n_pub} models ({kinds})")
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
    from evalkit.catalog.published import load_published
    from evalkit.report.frontier import DEFAULT_KINDS

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
