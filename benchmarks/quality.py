"""How good the served model is against every baseline and candidate, on public data.

Run: .venv/bin/python benchmarks/quality.py [--only NAME ...] [--check]
     [--n-bootstrap N] [--workdir DIR]

``--workdir DIR`` keeps each data set's project folder under DIR and, when its
feature table is already there, reruns only train and evaluate: experiments on
the model then cost minutes, not the ingest and feature stages again.

Data sets: CDNOW master (23,570 customers, benchmarks/data/CDNOW_master.txt, see
CDNOW_PROVENANCE.md there) at as_of 1998-03-31, 1998-05-15 and 1998-06-29; the
built-in sample (`churn generate` with this checkout's params); and four generated
regimes the real logs we are judged on may look like, each with its own seed: sparse
(most customers buy once, fast dropout), seasonal (half the customers buy in
season), small (4,000 customers) and big (60,000). A change is judged on all of
them, so nothing is tuned to one log; ``--check`` then runs nine held-back ones (two
more CDNOW cutoffs, four regimes with other seeds, ``loyal``: two years of frequent
buyers whose churn base rate swings between 0.5 and 0.7 with the season, like the
retail logs, and ``declining`` and ``growing``, shops whose purchase rates drift for
good) that it was never tuned on. Each
runs through the real CLI (`python -m churn` ingest, features, train, evaluate;
generate first for the generated ones) in a temporary project folder with its own MLflow store, like
tests/test_pipeline_e2e.py, and is read back from metrics/eval.json and
metrics/baselines.json. Nothing is downloaded.

Printed per data set: the served model, each baseline and each candidate with n,
base rate, ROC-AUC, PR-AUC, Brier and log loss, and the paired-bootstrap margins
of the served model over it with 95 % intervals (positive: served is better; AUC
margin = served - other, Brier margin = other - served). The last line says
whether the target holds: on every data set the served model's point estimates
are at least as good as every baseline's on ROC-AUC and Brier, and no paired
interval lies wholly below zero. Takes 15-20 min on 2 idle cores (the CDNOW bootstraps
and the big regime's training are most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT / "benchmarks" / "data" / "CDNOW_master.txt"
COLUMNS = ["n", "base_rate", "roc_auc", "pr_auc", "brier", "log_loss"]


@dataclass(frozen=True)
class DataSet:
    name: str
    as_of: str | None  # None: the generated log's own (the day after its last transaction)
    cdnow: bool
    # generate.* values that differ from params.yaml's (generated data sets only)
    generate: dict[str, Any] = field(default_factory=dict)


DATA_SETS = (
    DataSet("cdnow-1998-03-31", "1998-03-31", cdnow=True),
    DataSet("cdnow-1998-05-15", "1998-05-15", cdnow=True),
    DataSet("cdnow-1998-06-29", "1998-06-29", cdnow=True),
    DataSet("sample", None, cdnow=False),
    DataSet(
        "sparse",
        None,
        cdnow=False,
        generate={"seed": 5, "rate_mean_per_year": 1.2, "dropout_b": 1.5},
    ),
    DataSet("seasonal", None, cdnow=False, generate={"seed": 6, "seasonal_fraction": 0.5}),
    DataSet("small", None, cdnow=False, generate={"seed": 8, "n_customers": 4000}),
    DataSet("big", None, cdnow=False, generate={"seed": 9, "n_customers": 60000}),
)


def _reseeded(name: str, seed: int) -> DataSet:
    """One of DATA_SETS' generated regimes under another seed (named ``<name>-s2``): the
    regime's settings stay defined in one place."""
    regime = next(d for d in DATA_SETS if d.name == name)
    return replace(regime, name=f"{name}-s2", generate={**regime.generate, "seed": seed})


# Held back (``--check``): two more CDNOW cutoffs and the regimes with other seeds, for a
# change already judged on DATA_SETS, as data it was never tuned on.
CHECK_SETS = (
    DataSet("cdnow-1998-04-30", "1998-04-30", cdnow=True),
    DataSet("cdnow-1998-06-01", "1998-06-01", cdnow=True),
    _reseeded("sample", 121),
    _reseeded("sparse", 105),
    _reseeded("seasonal", 106),
    _reseeded("small", 108),
    # Loyal shoppers over two years (like the retail logs the issue cites, whose churn
    # base rate is near one half, not the 0.8-0.9 of the regimes above): a regime no
    # change was ever judged on.
    DataSet(
        "loyal",
        None,
        cdnow=False,
        generate={
            "seed": 110,
            "n_customers": 5000,
            "start": "2009-12-01",
            "end": "2011-12-10",
            "rate_mean_per_year": 8.0,
            "dropout_b": 8.0,
        },
    ),
    # A lasting drift in the churn base rate (not a season): loyal shoppers in a shop whose
    # purchase rates fall by 40 % a year, and a default shop growing by 50 % a year. Held-out
    # cutoffs then sit at another level than the test cutoff for good: the case where a
    # calibrator's level shift was expected to help (the second retail log). On
    # `declining` it hurt (README, "declining and growing").
    DataSet(
        "declining",
        None,
        cdnow=False,
        generate={
            "seed": 130,
            "n_customers": 5000,
            "start": "2009-12-01",
            "end": "2011-12-10",
            "rate_mean_per_year": 8.0,
            "dropout_b": 8.0,
            "trend_per_year": -0.5,
        },
    ),
    DataSet(
        "growing",
        None,
        cdnow=False,
        generate={"seed": 131, "n_customers": 10000, "trend_per_year": 0.4},
    ),
)


def cdnow_csv(target: Path) -> None:
    """CDNOW master (whitespace separated, YYYYMMDD) as a plain CSV the ingest reads."""
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"),
            "quantity": raw["number_of_cds"],
            "amount": raw["dollar_value"],
        }
    )
    out.to_csv(target, index=False)


def project_params(folder: Path, data: DataSet, n_bootstrap: int) -> Path:
    """This checkout's params.yaml, pointed at ``folder`` and the data set."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["tracking"]["uri"] = f"sqlite:///{folder / 'mlflow.db'}"
    params["tracking"]["register_model"] = False
    params["evaluate"]["n_bootstrap"] = n_bootstrap
    if data.cdnow:
        params["paths"]["raw_transactions"] = "data/raw/cdnow.csv"
        params["snapshots"]["as_of"] = data.as_of
    unknown = set(data.generate) - set(params["generate"])
    if unknown:
        raise SystemExit(f"{data.name}: no generate.{', generate.'.join(sorted(unknown))}")
    params["generate"].update(data.generate)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def run_cli(folder: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT / "src")
    done = subprocess.run(
        [sys.executable, "-m", "churn", "--params", "params.yaml", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stderr.splitlines():
        if " train: serving " in line or (" train: " in line and "trees" in line):
            print("   ", line.split(" INFO ", 1)[-1])
    if done.returncode != 0:
        raise SystemExit(f"churn {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def evaluate_data_set(data: DataSet, n_bootstrap: int, workdir: Path | None) -> dict[str, Any]:
    """eval.json with baselines.json under ``baselines`` (the CLI's own output)."""
    if workdir is not None:
        return run_data_set(workdir / data.name, data, n_bootstrap)
    with tempfile.TemporaryDirectory(prefix=f"churn-quality-{data.name}-") as scratch:
        return run_data_set(Path(scratch), data, n_bootstrap)


def run_data_set(folder: Path, data: DataSet, n_bootstrap: int) -> dict[str, Any]:
    """Run the CLI in ``folder``; a folder whose feature stage already ran keeps it."""
    (folder / "data" / "raw").mkdir(parents=True, exist_ok=True)
    params = project_params(folder, data, n_bootstrap)
    features = yaml.safe_load(params.read_text(encoding="utf-8"))["paths"]["train_features"]
    steps = ["train", "evaluate"]
    if not (folder / features).exists():
        steps = ["ingest", "features", *steps]
        if data.cdnow:
            cdnow_csv(folder / "data" / "raw" / "cdnow.csv")
        else:
            steps.insert(0, "generate")
    for step in steps:
        run_cli(folder, step)
    metrics = json.loads((folder / "metrics" / "eval.json").read_text(encoding="utf-8"))
    baselines = json.loads((folder / "metrics" / "baselines.json").read_text(encoding="utf-8"))
    return {**metrics, "baselines": baselines}


def table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per model: the served model, baselines, candidates (with margins)."""
    rows = {f"served ({result.get('served', 'lightgbm')})": {c: result[c] for c in COLUMNS}}
    for name, m in result["baselines"].items():
        rows[f"baseline {name}"] = m
    for name, m in result.get("candidates", {}).items():
        rows[f"candidate {name}"] = m["test"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    for margin in ("roc_auc_margin", "brier_margin"):
        if f"{margin}_ci_low" in frame:
            frame[margin] = [
                _interval(r[margin], r.get(f"{margin}_ci_low"), r.get(f"{margin}_ci_high"))
                for _, r in frame.iterrows()
            ]
    shown = [c for c in [*COLUMNS, "roc_auc_margin", "brier_margin"] if c in frame]
    return frame[shown]


def _interval(point: Any, low: Any, high: Any) -> str:
    if not isinstance(point, float) or pd.isna(point):
        return ""
    if low is None or pd.isna(low):
        return f"{point:+.4f}"
    return f"{point:+.4f} [{low:+.4f}, {high:+.4f}]"


def target_failures(name: str, result: dict[str, Any]) -> list[str]:
    """Where the served model is worse than a baseline (point estimate or whole interval)."""
    failures = []
    for baseline, m in result["baselines"].items():
        if m["roc_auc_margin"] < 0 or m["brier_margin"] < 0:
            failures.append(f"{name}: {baseline} has a better point estimate")
        for margin in ("roc_auc_margin", "brier_margin"):
            if m.get(f"{margin}_ci_high", 0.0) < 0:
                failures.append(f"{name}: {baseline}'s {margin} interval is below zero")
    return failures


def chosen_data_sets(only: list[str] | None, *, check: bool) -> list[DataSet]:
    """The group's data sets (``--check``: the held-back ones), or those ``only`` names
    from either group."""
    if only:
        return [d for d in (*DATA_SETS, *CHECK_SETS) if d.name in only]
    return list(CHECK_SETS if check else DATA_SETS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="*",
        choices=[d.name for d in (*DATA_SETS, *CHECK_SETS)],
        help="data set names to run (default: all of the chosen group)",
    )
    parser.add_argument(
        "--check", action="store_true", help="the held-back data sets instead (CHECK_SETS)"
    )
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--workdir", type=Path, help="keep project folders here and reuse features")
    args = parser.parse_args()
    chosen = chosen_data_sets(args.only, check=args.check)
    failures: list[str] = []
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    for data in chosen:
        print(f"== {data.name}")
        result = evaluate_data_set(data, args.n_bootstrap, args.workdir)
        print(table(result).to_string(float_format=lambda v: f"{v:.4f}"))
        failures += target_failures(data.name, result)
    print("target holds" if not failures else "target missed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
