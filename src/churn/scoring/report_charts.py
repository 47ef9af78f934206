"""The report's charts as inline SVG strings, drawn with matplotlib.

The report must open from an e-mail attachment with no network, so every chart is
an SVG element pasted into the page: no image files, no scripts, no fonts to
fetch. Text stays text (``svg.fonttype: none``), so the browser draws it with a
local font and a marketer can search and copy the labels. matplotlib escapes the
text it writes, so a segment name such as ``<script>`` arrives as ``&lt;script&gt;``;
mathtext is off so a ``$`` in a label is just a dollar sign.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter
from matplotlib.typing import RcKeyType

BAND_COLOURS = {"low": "#4c9f70", "medium": "#f0a202", "high": "#d1495b"}
CURRENT = "#1f3a5f"
PREVIOUS = "#9fb3c8"
ACCENT = "#d1495b"

_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib, so layout never varies
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#8a8a8a",
    "axes.titleweight": "bold",
    "axes.titlesize": 11,
    "axes.titlelocation": "left",
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
}


@contextmanager
def _figure(name: str, width: float = 6.4, height: float = 3.2) -> Iterator[tuple[Figure, Axes]]:
    """A figure in the report style; ``name`` salts the SVG ids so charts never share one.

    A bare Figure (no pyplot) needs no GUI backend and leaves no global state
    behind, which suits a nightly job and parallel tests.
    """
    with mpl.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.subplots()


def _svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element fit for inlining in HTML5.

    Drops the XML prolog, the DTD and the namespace declarations (the HTML parser
    knows SVG without them), and turns ``xlink:href`` into SVG 2 ``href``, so the
    page holds no URL at all. The fixed size becomes 100 % width so it scales, and
    the chart's title becomes its accessible name.
    """
    buffer = io.StringIO()
    fig.savefig(
        buffer,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    label = html.escape(fig.axes[0].get_title(loc="left") if fig.axes else "chart", quote=True)
    text = re.sub(
        r'<svg width="[^"]*" height="[^"]*"',
        f'<svg class="chart" role="img" aria-label="{label}" width="100%"'
        ' preserveAspectRatio="xMinYMin meet"',
        text,
        count=1,
    )
    return text.strip()


def _money_formatter(currency: str) -> FuncFormatter:
    def fmt(value: float, _pos: int | None = None) -> str:
        magnitude = abs(value)
        if magnitude >= 1e6:
            return f"{currency}{value / 1e6:,.1f}m"
        if magnitude >= 1e4:
            return f"{currency}{value / 1e3:,.0f}k"
        return f"{currency}{value:,.0f}"

    return FuncFormatter(fmt)


def risk_distribution(
    histogram: Mapping[str, np.ndarray], previous: np.ndarray | None = None
) -> str:
    """Histogram of churn probability, bars coloured by the customer's risk band.

    ``histogram``: customers per equal bin of [0, 1], per risk band (counted from the
    score table by churn.scoring.score_digest, so the table itself is never needed here).
    Stacked by band, so the reader sees both the shape and where the band cut
    points fall on it. With ``previous`` (an earlier run's counts over all bands) its
    histogram is drawn over the bars as an outline, so a shift in risk shows at a glance.
    """
    bins = len(next(iter(histogram.values())))
    edges = np.linspace(0.0, 1.0, bins + 1)
    with _figure("risk") as (fig, ax):
        bottom = np.zeros(bins)
        for band, colour in BAND_COLOURS.items():
            counts = histogram.get(band, np.zeros(bins, dtype="int64"))
            ax.bar(
                edges[:-1],
                counts,
                width=np.diff(edges),
                bottom=bottom,
                align="edge",
                color=colour,
                edgecolor="white",
                linewidth=0.5,
                label=f"{band} risk",
            )
            bottom += counts
        if previous is not None:
            ax.stairs(previous, edges, color=CURRENT, linewidth=1.5, label="previous run")
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("Predicted chance of churning in the next 90 days")
        ax.set_ylabel("Customers")
        against = ", against the previous run" if previous is not None else ""
        ax.set_title(f"How risky are our active customers{against}?")
        fig.legend(loc="outside lower center", ncol=4 if previous is not None else 3)
        return _svg(fig)


def value_at_risk_by_segment(
    by_segment: pd.Series, currency: str, previous: pd.Series | None = None
) -> str:
    """Horizontal bars: expected 12-month value at risk per RFM segment, largest on top;
    beside each, the previous run's when there is one."""
    ordered = by_segment.sort_values()
    positions = np.arange(len(ordered))
    labels = [str(s) for s in ordered.index]
    height = 0.9 + (0.42 if previous is not None else 0.32) * max(len(ordered), 1)
    with _figure("value", height=height) as (fig, ax):
        _bars_beside_previous(ax, positions, ordered, previous, ACCENT, single_label=None)
        if previous is not None:
            fig.legend(loc="outside lower center", ncol=2)
        ax.set_yticks(positions, labels)
        ax.xaxis.set_major_formatter(_money_formatter(currency))
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("Expected 12-month value at risk")
        title = "Where the value at risk sits (RFM segment)"
        ax.set_title(title + (" against the previous run" if previous is not None else ""))
        return _svg(fig)


def _bars_beside_previous(
    ax: Any,
    positions: np.ndarray,
    current: pd.Series,
    previous: pd.Series | None,
    color: str,
    single_label: str | None,
) -> None:
    """Horizontal bars of ``current``; with a previous run, each bar split in two, this
    run's above the previous run's (aligned on ``current``'s index, missing as 0)."""
    if previous is None:
        labelled = {} if single_label is None else {"label": single_label}
        ax.barh(positions, current.to_numpy(), color=color, **labelled)
        return
    bar = 0.4
    ax.barh(positions + bar / 2, current.to_numpy(), height=bar, color=color, label="this run")
    ax.barh(
        positions - bar / 2,
        previous.reindex(current.index, fill_value=0).to_numpy(),
        height=bar,
        color=PREVIOUS,
        label="previous run",
    )


def segment_sizes(current: pd.Series, previous: pd.Series | None) -> str:
    """Customers per segment now, beside the previous run's counts when there is one."""
    segments = [str(s) for s in current.index]
    positions = np.arange(len(segments))[::-1]
    height = 0.9 + 0.36 * max(len(segments), 1)
    with _figure("segments", height=height) as (fig, ax):
        _bars_beside_previous(ax, positions, current, previous, CURRENT, single_label="this run")
        ax.set_yticks(positions, segments)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("Customers")
        ax.set_title(
            "Segment sizes" + (" against the previous run" if previous is not None else "")
        )
        fig.legend(loc="outside lower center", ncol=2)
        return _svg(fig)


def monthly_rates(monthly: pd.DataFrame, by_cutoff: pd.DataFrame | None) -> str:
    """Churn rate and repeat purchase rate per month, with the model's label rate per cutoff.

    The cutoff points are the churn rate the model was trained on (same label,
    same population), so a gap between them and the monthly line is a definition
    difference, not a data problem.
    """
    x = pd.PeriodIndex(monthly.index).to_timestamp()
    with _figure("monthly") as (fig, ax):
        ax.plot(x, monthly["churn_rate"], color=ACCENT, linewidth=2, label="churn rate")
        ax.plot(x, monthly["repeat_rate"], color=CURRENT, linewidth=2, label="repeat purchase rate")
        if by_cutoff is not None and not by_cutoff.empty:
            ax.plot(
                pd.to_datetime(by_cutoff.index),
                by_cutoff["churn_rate"],
                linestyle="none",
                marker="o",
                markersize=4,
                color=ACCENT,
                alpha=0.6,
                label="churn rate at model cutoffs",
            )
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title("Churn and repeat purchase rate per month")
        fig.legend(loc="outside lower center", ncol=3, fontsize=9)
        fig.autofmt_xdate()
        return _svg(fig)


def cohort_curves(table: pd.DataFrame) -> str:
    """One line per first-purchase cohort: share still buying k months later."""
    with _figure("cohorts") as (fig, ax):
        colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.85, max(len(table), 1)))
        for colour, (cohort, row) in zip(colours, table.iterrows(), strict=False):
            ax.plot(
                row.index, row.to_numpy(), color=colour, marker="o", markersize=3, label=str(cohort)
            )
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("Months since first purchase")
        ax.set_ylabel("Share of cohort buying")
        ax.set_title("Cohort retention (month of first purchase)")
        fig.legend(loc="outside right upper", fontsize=8, title="First purchase")
        return _svg(fig)
