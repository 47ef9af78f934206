"""The evaluation curves as small PNG files, for people browsing a run in MLflow.

DVC draws its plots from the CSVs (``dvc plots show``); the MLflow UI shows an
artifact as a file, so a reviewer sees ROC, precision-recall, reliability and
cumulative gains at a glance only when they are images. Drawn on matplotlib's
Agg canvas directly (no pyplot: no GUI backend, no global figure state, safe in
parallel tests), 4 x 3.2 inches at 100 dpi (about 20 kB each), and without the
matplotlib version in the PNG metadata, so the same curves give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZE_INCHES = (4.0, 3.2)
DPI = 100
LINE = "#1f3a5f"
REFERENCE = "#9a9a9a"


def _number(metrics: Mapping[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def _roc(ax: Axes, frame: pd.DataFrame, metrics: Mapping[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], color=REFERENCE, linestyle="--", linewidth=1, label="random")
    ax.plot(frame["fpr"], frame["tpr"], color=LINE, label="model")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=f"ROC (AUC {_number(metrics, 'roc_auc')})",
    )


def _pr(ax: Axes, frame: pd.DataFrame, metrics: Mapping[str, Any]) -> None:
    base = metrics.get("base_rate")
    if isinstance(base, int | float):
        ax.axhline(
            base, color=REFERENCE, linestyle="--", linewidth=1, label=f"base rate {base:.2f}"
        )
    ax.plot(frame["recall"], frame["precision"], color=LINE, label="model")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title=f"Precision-recall (AP {_number(metrics, 'pr_auc')})",
    )


def _calibration(ax: Axes, frame: pd.DataFrame, metrics: Mapping[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], color=REFERENCE, linestyle="--", linewidth=1, label="perfect")
    ax.plot(frame["mean_predicted"], frame["observed_rate"], color=LINE, marker="o", label="model")
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title=f"Reliability (ECE {_number(metrics, 'ece')})",
    )


def _gains(ax: Axes, frame: pd.DataFrame, metrics: Mapping[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], color=REFERENCE, linestyle="--", linewidth=1, label="random")
    ax.plot(frame["contacted_share"], frame["churners_found_share"], color=LINE, label="model")
    ax.set(
        xlabel="share of customers contacted (riskiest first)",
        ylabel="share of churners found",
        title=f"Cumulative gains (top-decile lift {_number(metrics, 'top_decile_lift')})",
    )


# curve table name -> how to draw it
CHARTS: dict[str, Callable[[Axes, pd.DataFrame, Mapping[str, Any]], None]] = {
    "roc.csv": _roc,
    "pr.csv": _pr,
    "calibration.csv": _calibration,
    "gains.csv": _gains,
}


def render_curves(
    curves: Mapping[str, pd.DataFrame], metrics: Mapping[str, Any], folder: Path
) -> list[Path]:
    """Write ``<name>.png`` into ``folder`` for each curve table CHARTS knows; returns them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        if name not in curves:
            continue
        figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
        canvas = FigureCanvasAgg(figure)
        ax = figure.subplots()
        draw(ax, curves[name], metrics)
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        ax.title.set_fontsize(10)
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
        ax.tick_params(labelsize=8)
        ax.grid(color="#e5e5e5", linewidth=0.8)
        ax.legend(fontsize=8, frameon=False, loc="best")
        path = folder / f"{Path(name).stem}.png"
        canvas.print_png(path, metadata={"Software": None})
        written.append(path)
    return written
