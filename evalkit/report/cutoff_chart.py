"""The before/after-cutoff chart: one dumbbell per model, its score on items it may have seen in
training against its score on items published after its cutoff (used by notebooks/frontier.ipynb)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from evalkit.report.charts import DPI

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


BEFORE_FACE, AFTER_FACE = "white", "#1f77b4"  # hollow: may have been seen; filled: after the cutoff


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

    n = len(rows)
    cap_in = 0.17 * len(textwrap.wrap(caption, 140)) + 0.3 if caption else 0.2
    height = 1.45 + 0.45 * n + cap_in
    fig = Figure(figsize=(9.0, height), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.27, (cap_in + 0.45) / height, 0.62, (0.45 * n + 0.3) / height))
    fig.suptitle(title, x=0.02, ha="left", y=1 - 0.12 / height, va="top", fontsize=11.5, fontweight="bold")
    for i, r in enumerate(rows.itertuples(index=False)):
        _dumbbell(ax, n - 1 - i, r)
    _axes(ax, rows, x_label)
    _legend(fig, before, after, 1 - 0.42 / height)
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


def _dumbbell(ax: Any, y: int, r: Any) -> None:
    """One model's row: the two scores joined by a line, their intervals, and the difference."""
    ax.plot([r.before, r.after], [y, y], color="#999999", lw=2, zorder=1)
    for val, lo, hi, face in (
        (r.before, r.before_low, r.before_high, BEFORE_FACE),
        (r.after, r.after_low, r.after_high, AFTER_FACE),
    ):
        if lo == lo and hi == hi:  # not NaN
            bar = {"fmt": "none", "ecolor": "#555555", "capsize": 3, "lw": 1, "zorder": 2}
            ax.errorbar([val], [y], xerr=[[val - lo], [hi - val]], **bar)
        ax.scatter([val], [y], s=60, facecolors=face, edgecolors=AFTER_FACE, linewidths=1.5, zorder=3)
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


def _axes(ax: Any, rows: pd.DataFrame, x_label: str) -> None:
    n = len(rows)
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


def _legend(fig: Figure, before: str, after: str, top: float) -> None:
    from matplotlib.lines import Line2D

    hollow = {"markerfacecolor": BEFORE_FACE, "markeredgecolor": AFTER_FACE}
    handles = [
        Line2D([], [], ls="none", marker="o", markersize=7, label=before, **hollow),
        Line2D([], [], ls="none", marker="o", color=AFTER_FACE, markersize=7, label=after),
    ]
    fig.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0.02, top), ncol=2, frameon=False, fontsize=8.5
    )
