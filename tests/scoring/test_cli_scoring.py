"""`churn score`, `export` and `explain` as a user runs them (real files, subprocesses)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from openpyxl import load_workbook
from trained_model import Trained

from churn.cli import main
from churn.model import tracking
from churn.schema import EXPORT_HEADERS, SCORE_COLUMNS
from churn.scoring.reasons import NO_WARNING_SIGN

CHURN = [sys.executable, "-m", "churn"]


def _churn(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHURN, *args], cwd=cwd, capture_output=True, text=True, check=False)


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "error" in line.lower()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--band", "extreme"], "churn: error: --band 'extreme' is not one of:"),
        (["export", "--segment", "VIP"], "churn: error: --segment 'VIP' is not one of:"),
        (["export", "--format", "pdf"], "churn: error: --format 'pdf' is not one of:"),
        (["score", "--as-of", "2026-13-01"], "churn: error: --as-of '2026-13-01' is not a date"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    proc = _churn(args, tmp_path)
    assert proc.returncode == 2
    errors = _error_lines(proc)
    assert len(errors) == 1 and errors[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


TRACKED = "which the pipeline tracks (params.yaml paths:); choose another file"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["export", "--output", "list.pdf"],
            "--output list.pdf must end in .csv or .xlsx (the suffix sets the format)",
        ),
        (
            ["export", "--format", "xlsx", "--output", "list.csv"],
            "--format xlsx disagrees with --output list.csv"
            " (its suffix sets the one format written; drop --format)",
        ),
        (
            ["export", "--top", "5", "--output", "data/exports/retention_targets.csv"],
            "--output data/exports/retention_targets.csv would overwrite"
            f" data/exports/retention_targets.csv, {TRACKED}",
        ),
        (
            ["score", "--as-of", "2026-01-01", "--output", "data/scores/scores.parquet"],
            "--output data/scores/scores.parquet would overwrite"
            f" data/scores/scores.parquet, {TRACKED}",
        ),
        (
            ["score", "--output", "scores.csv"],
            "--output scores.csv must end in .parquet (the suffix sets the format)",
        ),
        (
            ["report", "--output", "models/churn_model/report.html"],
            "--output models/churn_model/report.html would overwrite"
            f" models/churn_model, {TRACKED}",
        ),
        (
            ["export", "--scores", "nowhere.parquet"],
            "score table not found: nowhere.parquet (check --scores)",
        ),
    ],
)
def test_ad_hoc_output_onto_a_tracked_path_or_of_the_wrong_kind_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    assert _main(*args) == 2
    assert capsys.readouterr().err.splitlines() == [f"churn: error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


@pytest.fixture(scope="module")
def project(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scoring-project")
    (root / "data/interim").mkdir(parents=True)
    (root / "data/features").mkdir(parents=True)
    trained.transactions.to_parquet(root / "data/interim/transactions.parquet", index=False)
    trained.scoring.to_parquet(root / "data/features/score.parquet", index=False)
    ids = trained.scoring["customer_id"].tolist()
    pd.DataFrame(
        {
            "customer_id": ids[:-50],  # the last 50 are not in the customer master
            "email": [f"{i}@example.com" for i in ids[:-50]],
            "name": [f"Customer {i}" for i in ids[:-50]],
            "country": "DE",
            "marketing_consent": pd.array(
                [None if k % 10 == 0 else k % 4 != 0 for k in range(len(ids) - 50)], "boolean"
            ),
        }
    ).to_parquet(root / "data/interim/customers.parquet", index=False)
    example = trained.scoring[trained.model.features].head(3)
    example = example.astype({c: "string" for c in example.select_dtypes("object")})
    checksums = tracking.save_model(trained.model, example, root / "models/churn_model")
    (root / "models/train_run.json").write_text(
        json.dumps({"registered_model": "churn-test", "model_sha256": checksums})
    )
    (root / "params.yaml").write_text(
        "snapshots:\n  n_train_cutoffs: 3\n"
        "targeting:\n  max_contacts: 120\n  max_budget: 400\n"
        "export:\n  top_n: 500\n"
    )
    return root


def _main(*args: str) -> int:
    """``churn ARGS`` in process, through the real entry point; returns the exit code."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tracked(project: Path) -> Iterator[dict[str, str]]:
    """`churn score` and `churn export` as the DVC stages run them (no options); the
    hashes of every file in the project afterwards. Later commands run in ``project``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert _main("score") == 0
        assert _main("export") == 0
        yield _tree(project)
    mlflow.set_tracking_uri(None)  # the CLI points MLflow at the project's store


def test_the_stage_commands_write_the_tracked_outputs(project: Path, tracked: dict) -> None:
    scores = pd.read_parquet(project / "data/scores/scores.parquet")
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert set(scores["model_name"]) == {"churn-test"} and set(scores["model_version"]) == {""}
    targets = pd.read_parquet(project / "data/scores/targets.parquet")
    chosen = targets[targets["targeted"]]
    assert len(chosen) <= 120 and chosen["contact_cost"].sum() <= 400 + 1e-9
    selected = targets[targets["selected"]]
    assert (selected["reason_1"] != "").mean() > 0.5  # reasons filled for the list ...
    assert (targets.loc[~targets["selected"], "reason_1"] == "").all()  # ... and only there
    summary = json.loads((project / "data/exports/retention_targets.summary.json").read_text())
    listed = pd.read_csv(project / "data/exports/retention_targets.csv", dtype={"Customer ID": str})
    assert list(listed.columns) == list(EXPORT_HEADERS.values())
    assert len(listed) == summary["exported"] == len(selected)
    assert set(listed["Customer ID"]) == set(selected["customer_id"])
    assert summary["left_out"]["not_in_customers_table"] > 0
    assert summary["left_out"]["no_consent"] > 0 and summary["left_out"]["unknown_consent"] > 0
    assert listed["Email"].str.endswith("@example.com").all()
    book = load_workbook(project / "data/exports/retention_targets.xlsx", read_only=True)
    assert sum(1 for _ in book.active.iter_rows()) == len(listed) + 1
    assert summary["files"] == [
        "data/exports/retention_targets.csv",
        "data/exports/retention_targets.xlsx",
    ]


def test_ad_hoc_runs_write_beside_the_tracked_outputs_and_never_over_them(
    project: Path, tracked: dict[str, str], trained: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another date, model, filter, format or comparison: new files, tracked ones untouched."""
    as_of = pd.Timestamp(trained.scoring["cutoff"].iloc[0]).date() - dt.timedelta(days=30)
    listed = pd.read_csv(project / "data/exports/retention_targets.csv", dtype={"Customer ID": str})
    capsys.readouterr()

    assert _main("score", "--as-of", as_of.isoformat()) == 0
    replayed = f"data/scores/scores.as_of={as_of}.parquet"
    scores = pd.read_parquet(project / replayed)
    assert list(scores.columns) == list(SCORE_COLUMNS) and set(scores["as_of"].dt.date) == {as_of}
    assert (
        f"-> {replayed} (ad hoc; the tracked data/scores/scores.parquet" in capsys.readouterr().err
    )

    assert _main("score", "--model", "models/churn_model") == 0
    by_model = pd.read_parquet(project / "data/scores/scores.model=models-churn_model.parquet")
    pd.testing.assert_frame_equal(by_model, pd.read_parquet(project / "data/scores/scores.parquet"))

    # The list for the replayed date: list + summary named by its date, no targets table
    assert _main("export", "--scores", replayed) == 0
    stem = f"data/exports/retention_targets.as_of={as_of}"
    summary = json.loads((project / f"{stem}.summary.json").read_text())
    assert summary["as_of"] == str(as_of)
    assert summary["files"] == [f"{stem}.csv", f"{stem}.xlsx"]
    replayed_list = pd.read_csv(project / f"{stem}.csv", dtype={"Customer ID": str})
    assert summary["exported"] == len(replayed_list) > 0
    customer = str(replayed_list["Customer ID"].iloc[0])
    capsys.readouterr()
    assert _main("explain", customer, "--as-of", as_of.isoformat()) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"customer {customer} at {as_of}: churn risk")
    assert f"  1. {_first_sign(replayed_list.iloc[0])}" in out

    # Filters: the tracked list, narrowed, under a name saying how
    segments = ["Can't lose them", "At risk"]
    capsys.readouterr()
    assert (
        _main("export", "--segment", segments[0], "--segment", segments[1], "--band", "high") == 0
    )
    stem = "data/exports/retention_targets.segment-cant-lose-them+at-risk.band-high"
    narrowed = pd.read_csv(project / f"{stem}.csv", dtype={"Customer ID": str})
    expected = listed[listed["Segment"].isin(segments) & (listed["Risk band"] == "high")]
    assert narrowed["Customer ID"].tolist() == expected["Customer ID"].tolist()
    assert (project / f"{stem}.xlsx").exists() and (project / f"{stem}.summary.json").exists()
    err = capsys.readouterr().err
    assert f"-> {stem}.csv, {stem}.xlsx, {stem}.summary.json (ad hoc;" in err

    # --output: the suffix picks the one format; the summary goes beside it
    assert _main("export", "--top", "5", "--output", "out/top five.xlsx") == 0
    book = load_workbook(project / "out/top five.xlsx", read_only=True)
    rows = [[c.value for c in row] for row in book.active.iter_rows()]
    assert [r[1] for r in rows[1:]] == listed["Customer ID"].head(5).tolist()
    summary = json.loads((project / "out/top five.summary.json").read_text())
    assert summary["files"] == ["out/top five.xlsx"] and summary["exported"] == 5
    assert _main("export", "--format", "csv") == 0  # one format, the whole list
    whole = pd.read_csv(project / "data/exports/retention_targets.adhoc.csv", dtype=str)
    pd.testing.assert_frame_equal(
        whole, pd.read_csv(project / "data/exports/retention_targets.csv", dtype=str)
    )

    # A comparison report: named by the previous run's date
    assert _main("report", "--previous", replayed) == 0
    html = (project / f"reports/retention_report.previous={as_of}.html").read_text()
    assert "against the previous run" in html

    after = _tree(project)
    assert {path: after[path] for path in tracked} == tracked  # byte-identical
    assert sorted(set(after) - set(tracked)) == sorted(
        [
            replayed,
            "data/scores/scores.model=models-churn_model.parquet",
            *(f"data/exports/retention_targets.as_of={as_of}.{s}" for s in EXPORT_SUFFIXES),
            *(f"{stem}.{s}" for s in EXPORT_SUFFIXES),
            "out/top five.xlsx",
            "out/top five.summary.json",
            "data/exports/retention_targets.adhoc.csv",
            "data/exports/retention_targets.adhoc.summary.json",
            f"reports/retention_report.previous={as_of}.html",
        ]
    )


EXPORT_SUFFIXES = ("csv", "xlsx", "summary.json")


def _first_sign(row: pd.Series) -> str:
    """The first warning sign the list gives a customer, as `churn explain` words it: the
    list puts "picked for value: ..." in front of (or in place of) the signs; explain,
    for anyone, picked or not, gives the signs alone."""
    signs = [
        str(r)
        for r in row[["Why (1)", "Why (2)", "Why (3)"]]
        if isinstance(r, str) and r and not r.startswith("picked for value")
    ]
    return signs[0] if signs else NO_WARNING_SIGN


def test_a_filter_that_empties_the_list_refuses_and_writes_nothing(
    project: Path, tracked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18: a filter matching nobody is one error line and a non-zero exit, and no file:
    neither a header-only ad hoc list nor, through --output, an empty tracked one."""
    summary = json.loads((project / "data/exports/retention_targets.summary.json").read_text())
    listed = pd.read_csv(project / "data/exports/retention_targets.csv")
    high = int((listed["Risk band"] == "high").sum())
    assert 0 < high < summary["selected"]
    before = sorted(p.relative_to(project) for p in (project / "data/exports").rglob("*"))
    capsys.readouterr()
    assert _main("export", "--band", "high", "--min-value", "100000", "--format", "csv") == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if " INFO " not in line] == [
        "churn: error: the list is empty: --min-value 100000 left 0 of"
        f" {summary['selected']} selected customers (after --band 'high': {high});"
        " nothing written (loosen or drop that filter; `churn export` with no option lists"
        " every selected customer)"
    ]
    full = project / "data/exports/retention_targets.csv"
    assert _main("export", "--min-value", "100000", "--output", str(full)) == 2
    assert sorted(p.relative_to(project) for p in (project / "data/exports").rglob("*")) == before
    assert pd.read_csv(full).shape == listed.shape  # the full list is still there


def test_explain_names_the_reasons_the_list_gives(
    project: Path, tracked: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    listed = pd.read_csv(project / "data/exports/retention_targets.csv", dtype={"Customer ID": str})
    customer = str(listed["Customer ID"].iloc[0])
    capsys.readouterr()
    assert _main("explain", customer) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith(f"customer {customer} at ") and f"  1. {_first_sign(listed.iloc[0])}" in out
    )
    row = listed.iloc[0]
    when = row["Next purchase expected"]
    assert f"lifetime value (discounted) {row['Lifetime value (discounted)']:,.2f}," in out
    assert f"next purchase expected {when if isinstance(when, str) else 'not expected'}\n" in out
    assert _main("explain", "no-such-customer") == 2
    assert "is not an active customer" in capsys.readouterr().err
