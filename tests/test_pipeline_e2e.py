"""The real pipeline, end to end: `dvc repro` in a temporary git repository.

Nothing is mocked: DVC runs each stage as a subprocess (`bin/churn`, which finds the
project's interpreter itself), MLflow writes to a real SQLite store, every artifact is
real Parquet/CSV/JSON. Every DVC command runs the way the README prints it, from a shell
whose PATH holds only /usr/bin and /bin: no venv on it, nothing activated. The temporary
repository's `.venv` links to this interpreter's environment, as `make setup` would
build it. The sample is shrunk so the suite stays fast.

The tests share one repository and run in file order: the first repro, the optional
backtest and a commit of both come first; the README's experiment walkthrough, which
changes a param in the workspace, runs last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from markupsafe import escape
from mlflow.tracking import MlflowClient
from openpyxl import load_workbook
from sklearn.metrics import roc_auc_score

from churn.config import TrainConfig, load_params
from churn.model.training_run import find_local_training_run
from churn.schema import EXPORT_HEADERS, SCORE_COLUMNS, TARGET_COLUMNS, TRANSACTION_COLUMNS
from project_copy import PROJECT_ROOT, copy_project
from stage_inputs import load_stages
from web.page_server import serving

pytestmark = pytest.mark.e2e

EVAL_KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "base_rate", "n"}
BASELINES = {"recency", "rfm_score", "bgnbd", "pnbd", "logistic"}
# What a clone holds (plus src/, bin/ and .dvc/): pyproject.toml and uv.lock too, since
# MLflow copies them into the model folder from a uv project.
PROJECT_FILES = (
    "dvc.yaml",
    "backtest/dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    "pyproject.toml",
    "uv.lock",
    "data/outcomes/save_rates.json",  # export's dep (targeting.save_rates: measured)
    "metrics/outcomes.json",  # export's (rank_by: auto) and report's ("Did it work?") dep
)
MAIN_STAGES = ["generate", "ingest", "features", "train", "evaluate", "score", "export", "report"]
BACKTEST_STEPS = 1  # one retrain: the stage's wiring; tests/model/test_backtest.py steps
Project = tuple[Path, dict[str, str]]


def _fresh_shell_env() -> dict[str, str]:
    """A login shell's environment without the venv: PATH is /usr/bin:/bin (and git's
    folder, should it live elsewhere), no VIRTUAL_ENV, no MLFLOW_TRACKING_URI."""
    path = ["/usr/bin", "/bin"]
    git = shutil.which("git")
    if git and str(Path(git).parent) not in path:
        path.append(str(Path(git).parent))
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def _sh(line: str, cwd: Path, env: dict[str, str], ok: bool = True) -> str:
    """Run ``line`` through /bin/sh as a person would type it; stdout and stderr."""
    proc = subprocess.run(
        ["/bin/sh", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, f"{line} exited {proc.returncode}:\n{output[-4000:]}"
    return output


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def _link_environment(repo: Path) -> None:
    """The clone's `.venv`, as `make setup` builds it: this interpreter's environment."""
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def _checksums(repo: Path, folders: tuple[str, ...]) -> dict[str, str]:
    return {
        p.relative_to(repo).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted((repo / folder).rglob("*"))
        if p.is_file() and p.name != ".gitignore"
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    repo = tmp_path_factory.mktemp("project")
    copy_project(repo, PROJECT_FILES)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["generate"]["n_customers"] = 4_000
    params["train"]["n_estimators"] = 400
    params["backtest"]["steps"] = BACKTEST_STEPS
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _link_environment(repo)
    env = _fresh_shell_env()
    _sh("git init -q && git add -A && git commit -qm project", repo, env)
    yield repo, env


@pytest.fixture(scope="module")
def first_repro(project: Project) -> str:
    repo, env = project
    return _sh(".venv/bin/dvc repro", repo, env)


@pytest.fixture(scope="module")
def backtest_repro(project: Project, first_repro: str) -> str:
    repo, env = project
    return _sh(".venv/bin/dvc repro backtest/dvc.yaml", repo, env)


@pytest.fixture(scope="module")
def committed(project: Project, first_repro: str, backtest_repro: str) -> Path:
    """Both pipelines reproduced and committed, as a data scientist would leave them."""
    repo, env = project
    _sh("git add -A && git commit -qm 'make run'", repo, env)
    return repo


def test_every_stage_runs_in_order_without_the_venv_on_path(first_repro: str) -> None:
    assert _stages_run(first_repro) == MAIN_STAGES
    assert "not found" not in first_repro


def test_the_repro_log_is_plain_with_a_few_progress_lines_per_loop(first_repro: str) -> None:
    """Not a terminal (cron, CI, this pipe): no bar, no carriage return or escape code, and
    at most one progress line per tenth of each loop (training: boosting, the candidates'
    out-of-time fold models before the validation cutoff's, then the refit)."""
    assert "\r" not in first_repro and "\x1b" not in first_repro
    loops = Counter(re.findall(r" churn\.progress INFO (\w+): [\d,]+/[\d,]+ ", first_repro))
    assert set(loops) == {"features", "train", "evaluate"}, first_repro[-4000:]
    train_loops = 2 + TrainConfig().calibration_cutoffs - 1
    assert loops["features"] <= 11 and loops["evaluate"] <= 11, loops
    assert loops["train"] <= 11 * train_loops, loops


def test_outputs_have_their_schemas(project: Project, first_repro: str) -> None:
    repo, _ = project
    transactions = pd.read_parquet(repo / "data/interim/transactions.parquet")
    assert list(transactions.columns) == list(TRANSACTION_COLUMNS)
    report = json.loads((repo / "data/interim/ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"] > 0
    assert (
        len(pd.read_parquet(repo / "data/interim/quarantine.parquet")) == report["rows_quarantined"]
    )

    snapshots = pd.read_parquet(repo / "data/features/train.parquet")
    assert set(snapshots["split"]) == {"train", "valid", "test"}
    assert set(snapshots["churned"].unique()) == {0, 1}
    assert not snapshots.duplicated(["customer_id", "cutoff"]).any()
    for column in (
        "recency_days",
        "tenure_days",
        "n_orders",
        "revenue",
        "n_orders_90d",
        "revenue_365d",
    ):
        assert column in snapshots.columns
    assert (snapshots["recency_days"] >= 0).all()
    assert (snapshots["tenure_days"] >= snapshots["recency_days"]).all()

    assert (repo / "models/churn_model/MLmodel").exists()
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert set(metrics) >= EVAL_KEYS
    assert "baselines" not in metrics  # the model's own numbers only
    # Every candidate's validation and test numbers (issue 17), the served one named.
    candidates = metrics["candidates"]
    assert {"lightgbm", "logistic", "btyd_p_no_purchase", "blend", "average"} <= set(candidates)
    assert metrics["served"] in candidates
    for numbers in candidates.values():
        assert {"log_loss", "brier", "roc_auc"} <= set(numbers["valid"])
        assert {"roc_auc", "brier", "log_loss", "roc_auc_margin"} <= set(numbers["test"])
    served = candidates[metrics["served"]]
    assert served["test"]["brier"] == pytest.approx(metrics["brier"])
    trained = json.loads((repo / "metrics/train.json").read_text())
    heldout = {n: trained[f"candidates.{n}.heldout_log_loss"] for n in candidates}
    # The average, unless another candidate beat it clearly (churn.model.candidates.choose).
    assert metrics["served"] == "average" or heldout[metrics["served"]] == min(heldout.values())
    assert trained["served"] == metrics["served"]
    assert 0 < metrics["base_rate"] < 1 and metrics["n"] > 500
    baselines = json.loads((repo / "metrics/baselines.json").read_text())
    assert set(baselines) == BASELINES
    for baseline in baselines.values():
        assert {"roc_auc", "brier", "roc_auc_margin", "brier_margin"} <= set(baseline)
    for plot in ("roc.csv", "pr.csv", "calibration.csv"):
        assert len(pd.read_csv(repo / "plots" / plot)) > 2

    scores = pd.read_parquet(repo / "data/scores/scores.parquet")
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["customer_id"].is_unique
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    _lifetime_columns_are_sane(scores)
    table = pd.read_parquet(repo / "data/scores/targets.parquet")
    assert list(table.columns) == list(TARGET_COLUMNS)
    assert not (table["selected"] & table["control_group"]).any()
    targets = pd.read_csv(repo / "data/exports/retention_targets.csv")
    assert list(targets.columns) == list(EXPORT_HEADERS.values())
    assert 0 < len(targets) <= 500
    assert targets["Expected gain"].is_monotonic_decreasing
    assert (targets["Why (1)"].notna()).mean() > 0.5
    dates = pd.to_datetime(targets["Next purchase expected"], format="%Y-%m-%d")
    assert dates.notna().any() and (targets["Lifetime value (discounted)"] >= 0).all()
    summary = json.loads((repo / "data/exports/retention_targets.summary.json").read_text())
    assert summary["exported"] == len(targets) == table["selected"].sum()
    _the_list_reads_without_a_data_scientist(repo, targets)

    report_html = (repo / "reports/retention_report.html").read_text(encoding="utf-8")
    assert "Customers at risk" in report_html and "<script" not in report_html
    # the committed read-out saw purchases after this list's as-of date: not shown
    assert "Did it work?" not in report_html


def test_the_marketing_page_serves_the_exported_list(
    project: Project, first_repro: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`churn serve` over the real pipeline's outputs: with no filter on the page, its
    downloads are byte for byte the files the export stage wrote (same defaults, same
    writers), and a customer's page gives the reasons the list carries."""
    repo, _ = project
    monkeypatch.chdir(repo)
    params = load_params(repo / "params.yaml")
    with serving(params, None) as url:
        for fmt, tracked in (("csv", params.paths.targets), ("xlsx", params.paths.targets_xlsx)):
            with urllib.request.urlopen(f"{url}/download.{fmt}", timeout=60) as response:
                assert response.read() == (repo / tracked).read_bytes(), fmt
        who, why = EXPORT_HEADERS["customer_id"], EXPORT_HEADERS["reason_1"]
        first = pd.read_csv(repo / params.paths.targets, dtype={who: str}).iloc[0]
        with urllib.request.urlopen(f"{url}/customer/{first[who]}", timeout=60) as page:
            html = page.read().decode()
        assert f"<li>{escape(str(first[why]))}</li>" in html


def _the_list_reads_without_a_data_scientist(repo: Path, targets: pd.DataFrame) -> None:
    """#18 on the real pipeline: country from the transactions (the sample has no customers
    table), no country or calendar reason, value picks worded, an XLSX with formats and a
    guide sheet."""
    assert targets["Country"].notna().all()
    reasons = " ".join(targets[["Why (1)", "Why (2)", "Why (3)"]].fillna("").to_numpy().ravel())
    assert "country" not in reasons.lower() and "christmas" not in reasons.lower()
    assert "no single warning sign" not in reasons
    assert not re.search(r"usually every \d+(?!\d)(?! day)", reasons)  # a gap has its unit
    book = load_workbook(repo / "data/exports/retention_targets.xlsx")
    assert book.sheetnames == ["Retention list", "How to read this list"]
    sheet = book["Retention list"]
    header = [c.value for c in sheet[1]]
    assert sheet.cell(row=2, column=header.index("Churn risk (%)") + 1).number_format == "0%"
    assert sheet.auto_filter.ref and sheet.freeze_panes == "A2"


def _lifetime_columns_are_sane(scores: pd.DataFrame) -> None:
    """Discounted lifetime value over 36 months exceeds the 12-month value (the sample's
    customers rarely all leave within a year); next purchase dates lie after the as-of
    date, and are empty for the customers most likely gone."""
    assert (scores["clv_discounted"] > scores["expected_value_12m"]).mean() > 0.9
    dated = scores["next_purchase_date"].notna()
    assert 0 < dated.mean() < 1
    assert (scores.loc[dated, "next_purchase_date"] >= scores.loc[dated, "as_of"]).all()
    assert scores.loc[dated, "p_alive"].min() >= 0.5


def test_model_beats_recency_rule(project: Project, first_repro: str) -> None:
    repo, _ = project
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    recency = json.loads((repo / "metrics/baselines.json").read_text())["recency"]
    assert metrics["roc_auc"] > recency["roc_auc"]
    assert recency["roc_auc_margin"] == pytest.approx(metrics["roc_auc"] - recency["roc_auc"])
    assert metrics["top_decile_lift"] > 1.0


def test_model_finds_the_hidden_dropouts(project: Project, first_repro: str) -> None:
    """Customers who truly left before the test cutoff must look riskier than those still alive.

    The model is trained for the 90-day label, not for the hidden dropout (most
    90-day churners are alive but slow), so the bar is clear signal, not perfection:
    a model that learned artefacts of the sample would sit near 0.5.
    """
    repo, _ = project
    snapshots = pd.read_parquet(repo / "data/features/train.parquet")
    test = snapshots[snapshots["split"] == "test"]
    truth = pd.read_parquet(repo / "data/raw/dropout_truth.parquet")
    merged = test.merge(truth, on="customer_id", how="inner")
    assert len(merged) == len(test)
    gone = (merged["dropout_at"].notna() & (merged["dropout_at"] <= merged["cutoff"])).to_numpy()
    model = mlflow.pyfunc.load_model(str(repo / "models/churn_model"))
    probability = model.predict(merged)["churn_probability"].to_numpy()
    assert roc_auc_score(gone, probability) > 0.62
    assert np.mean(probability[gone]) > np.mean(probability[~gone])


def test_mlflow_holds_the_run_and_registered_model(project: Project, first_repro: str) -> None:
    repo, env = project
    uri = f"sqlite:///{repo / 'mlflow.db'}"  # params' default, relative to the repository
    client = MlflowClient(tracking_uri=uri)
    run_id = find_local_training_run(client, "churn", repo / "models/train_run.json")
    assert run_id is not None
    run = client.get_run(run_id)
    assert "test_roc_auc" in run.data.metrics and "valid_auc" in run.data.metrics
    assert "test_baselines.recency.roc_auc" in run.data.metrics
    assert run.data.tags["git_commit"] != "unknown"
    assert len(run.data.tags["data_fingerprint"]) == 16
    version = client.get_model_version_by_alias("churn-classifier", "challenger")
    assert version.run_id == run_id
    mlflow.set_tracking_uri(uri)
    try:
        loaded = mlflow.pyfunc.load_model("models:/churn-classifier@challenger")
    finally:
        mlflow.set_tracking_uri(None)
    assert loaded.metadata.run_id == run_id
    # What a person browsing MLflow sees: what ran, from which clean commit, and pictures.
    as_of = json.loads((repo / "data/features/calendar.json").read_text())["as_of"]
    head = _sh("git rev-parse HEAD", repo, env).strip()
    assert run.info.run_name == f"train {as_of} {head[:7]}"
    assert run.data.tags["git_dirty"] == "false"  # dvc.lock and outputs DVC wrote don't count
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"roc.png", "pr.png", "calibration.png", "gains.png", "roc.csv"} <= plots


def test_train_elsewhere_with_other_threads_changes_nothing(
    project: Project, first_repro: str
) -> None:
    """A fresh clone on another machine must reproduce the committed dvc.lock. Here
    `churn train` runs again with another thread count (a param, so DVC reruns it), under
    another BLAS kernel, other OpenMP threads and without NumPy's SIMD loops, and writes
    the same bytes: model folder (MLmodel included), train_run.json, metrics. So no later
    stage reruns, and every output hash in dvc.lock stays as it was."""
    repo, env = project
    outs_before = _locked_outputs(repo)
    models_before = _tree_bytes(repo / "models")
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["num_threads"] = 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    simd = np.show_config(mode="dicts")["SIMD Extensions"]["found"]  # type: ignore[index]
    elsewhere = {
        **env,
        "OPENBLAS_CORETYPE": "Prescott",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "3",
        "NPY_DISABLE_CPU_FEATURES": " ".join(simd),
    }
    output = _sh(".venv/bin/dvc repro", repo, elsewhere)
    assert _stages_run(output) == ["train"]
    assert _tree_bytes(repo / "models") == models_before
    assert _locked_outputs(repo) == outs_before
    assert "run_id" not in json.loads((repo / "models/train_run.json").read_text())


def _locked_outputs(repo: Path) -> dict[str, str]:
    """Every output's hash in dvc.lock, by stage and path."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        f"{stage}:{out['path']}": out["md5"]
        for stage, entry in lock["stages"].items()
        for out in entry.get("outs", [])
    }


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_train_depends_on_every_project_file_its_model_folder_copies(
    project: Project, first_repro: str
) -> None:
    """MLflow copies files into the model folder; a change to one must rerun `train`, or
    the folder no longer matches its dvc.lock entry on the next fresh `make run`."""
    repo, env = project
    tracked = _sh("git ls-files", repo, env).split()
    by_content: dict[str, list[str]] = {}
    for name in tracked:
        by_content.setdefault(hashlib.md5((repo / name).read_bytes()).hexdigest(), []).append(name)
    copied = {
        name
        for path in (repo / "models/churn_model").rglob("*")
        if path.is_file()
        for name in by_content.get(hashlib.md5(path.read_bytes()).hexdigest(), [])
    }
    assert {"src/churn/model/pyfunc.py", "src/churn/model/served_model.py"} <= copied
    assert "uv.lock" not in copied and "pyproject.toml" not in copied  # no uv project
    assert "src/churn/cli.py" not in copied  # only what the served model imports
    deps = load_stages(repo / "dvc.yaml", root=repo)["train"].deps
    empty_inits = {n for n in copied if n.endswith("__init__.py") and not (repo / n).read_text()}
    missing = [
        name
        for name in sorted(copied - empty_inits)
        if not any(name == d or name.startswith(d + "/") for d in deps)
    ]
    assert missing == []


def test_the_backtest_runs_only_when_asked(
    project: Project, first_repro: str, backtest_repro: str
) -> None:
    repo, _ = project
    assert "backtest" not in " ".join(_stages_run(first_repro))
    assert _stages_run(backtest_repro) == ["backtest/dvc.yaml:backtest"]
    table = pd.read_csv(repo / "metrics/backtest.csv")
    assert table["step"].tolist() == [0]
    summary = json.loads((repo / "metrics/backtest.json").read_text())
    assert summary["replays"] == BACKTEST_STEPS
    assert summary["roc_auc"]["min"] == pytest.approx(table["roc_auc"].min())
    assert set(summary["roc_auc_margin"]) == BASELINES


def test_second_repro_does_nothing(project: Project, committed: Path) -> None:
    repo, env = project
    assert _stages_run(_sh(".venv/bin/dvc repro", repo, env)) == []
    assert "up to date" in _sh(".venv/bin/dvc status", repo, env)  # both pipelines


def test_a_failing_stage_says_why_and_checkout_restores_its_outputs(
    project: Project, committed: Path
) -> None:
    repo, env = project
    report = repo / "reports/retention_report.html"
    before = report.read_bytes()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["report"]["top_targets"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = _sh(".venv/bin/dvc repro -s -f report", repo, env, ok=False)
    assert "churn: error: invalid params.yaml: report.top_targets:" in output
    assert "not found" not in output
    assert not report.exists()  # DVC removes a stage's outputs before running it
    _sh("git checkout -- params.yaml && .venv/bin/dvc checkout", repo, env)
    assert report.read_bytes() == before
    assert "up to date" in _sh(".venv/bin/dvc status", repo, env)


def test_a_colleague_pulls_the_outputs_without_rerunning(
    project: Project, committed: Path, tmp_path: Path
) -> None:
    """README "Sharing with a colleague": a local folder as the team's remote."""
    repo, env = project
    remote, clone = tmp_path / "team-dvc", tmp_path / "colleague"
    _sh(f".venv/bin/dvc remote add -d shared {remote}", repo, env)
    _sh("git add .dvc/config && git commit -qm 'DVC remote for the team'", repo, env)
    _sh(".venv/bin/dvc push", repo, env)
    _sh(f"git clone -q {repo} {clone}", tmp_path, env)
    _link_environment(clone)
    _sh(".venv/bin/dvc pull", clone, env)
    assert "up to date" in _sh(".venv/bin/dvc status", clone, env)
    assert _stages_run(_sh(".venv/bin/dvc repro", clone, env)) == []
    folders = ("data", "models", "metrics", "plots", "reports")
    assert _checksums(clone, folders) == _checksums(repo, folders)


def _readme_experiment_commands() -> list[str]:
    """The command lines of the first ```bash block under "## Experiments" in README.md."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Experiments\n") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "README.md's Experiments section lost its ```bash block"
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _flat_keys(metrics: dict[str, object], prefix: str = "") -> set[str]:
    """``candidates.blend.test.roc_auc``: nested keys as DVC names its columns."""
    keys = set()
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        keys |= _flat_keys(value, f"{name}.") if isinstance(value, dict) else {name}
    return keys


def test_the_readme_experiment_walkthrough_runs_as_printed(
    project: Project, committed: Path
) -> None:
    """Each line verbatim (comments and all) from a shell without the venv on PATH."""
    repo, env = project
    seen = set()
    for line in _readme_experiment_commands():
        output = _sh(line, repo, env)
        if " exp run " in line:
            seen.add("exp run")
            assert _stages_run(output) == ["train", "evaluate", "score", "export", "report"]
        elif " exp show" in line:
            seen.add("exp show")
            header = next(row.split() for row in output.splitlines() if "Experiment" in row)
            first = header[header.index("Created") + 1 :][: len(EVAL_KEYS)]
            eval_keys = _flat_keys(json.loads((repo / "metrics/eval.json").read_text()))
            # The model's own metrics lead (its candidates' among them, as DVC sorts them).
            assert set(first) <= eval_keys, first
            assert "workspace" in output
        elif " metrics diff" in line:
            seen.add("metrics diff")
            assert "metrics/eval.json" in output and "roc_auc" in output
            assert "baselines" not in output
        elif " plots diff" in line:
            seen.add("plots diff")
            assert (repo / "dvc_plots/index.html").exists()
            assert "dvc_plots" not in _sh("git status --porcelain", repo, env)
    assert seen == {"exp run", "exp show", "metrics diff", "plots diff"}


def _readme_outcome_commands() -> list[list[str]]:
    """The command lines of each ```bash block under "## Outcomes" in README.md."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Outcomes") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 2, "README.md's Outcomes section lost its ```bash blocks"
    return [
        [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
        for block in blocks[:2]
    ]


def test_the_readme_outcomes_walkthrough_measures_and_adjusts(
    project: Project, committed: Path
) -> None:
    """`make run` (here: the committed repro), simulate-campaign, outcomes, as printed;
    then the next list by the nightly job with `targeting.save_rates: measured`.
    Last in the file: the campaign appends to the raw sample."""
    repo, env = project
    walkthrough, next_list = _readme_outcome_commands()
    assert walkthrough[0] == "make run"
    for line in walkthrough[1:]:
        _sh(line, repo, env)
    truth = json.loads((repo / "data/raw/campaign_truth.json").read_text())
    metrics = json.loads((repo / "metrics/outcomes.json").read_text())
    keys = {"n_contacted", "n_control", "retention_contacted", "retention_control", "lift",
            "lift_ci_low", "lift_ci_high", "save_rate", "save_rate_ci_low",
            "save_rate_ci_high", "incremental_revenue", "cost", "roi"}  # fmt: skip
    assert keys <= set(metrics) and metrics["horizon_closed"] is True
    assert list(metrics["by_campaign"]) == ["2026-10-01"]
    assert set(metrics["by_action"]) == set(truth["save_rate"])
    assert keys <= set(metrics["by_band"][next(iter(metrics["by_band"]))])
    table = pd.read_parquet(repo / "data/scores/targets.parquet")
    listed = table[table["targeted"]]
    assert metrics["n_contacted"] + metrics["n_control"] == len(listed)
    assert metrics["n_control"] == int(listed["control_group"].sum())
    for name in ("outcomes_by_action.csv", "outcomes_by_campaign.csv"):
        assert (repo / "plots" / name).exists()
    rates = json.loads((repo / "data/outcomes/save_rates.json").read_text())
    assert set(rates["actions"]) == set(truth["save_rate"])
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("churn-outcomes")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.data.metrics["n_control"] == metrics["n_control"]
    uplift = metrics["uplift"]  # one campaign: no uplift model to judge
    assert uplift["fitted"] is False and uplift["reason"].startswith("not enough outcomes")

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["targeting"]["save_rates"] = "measured"
    params["targeting"]["rank_by"] = "auto"  # risk: the read-out fitted no uplift model
    params["outcomes"]["min_control"] = 5  # the shrunk sample's control groups are small
    params["nightly"]["max_score_psi"] = 5.0  # as the README says for this first run
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (command,) = next_list
    _sh(command, repo, env)
    manifest = json.loads((repo / "data/nightly/as_of=2026-12-30/manifest.json").read_text())
    assert manifest["ranking"] == {"rank_by": "risk", "requested": "auto", "why": uplift["reason"]}
    # the next list's report says how the campaign went, per action, in plain words
    report = (repo / "data/nightly/as_of=2026-12-30/retention_report.html").read_text(
        encoding="utf-8"
    )
    assert "<h2>Did it work?</h2>" in report
    for action in truth["save_rate"]:
        assert re.search(rf"<p>{re.escape(action)}(:| kept| did harm)", report), action
    used = manifest["save_rates"]
    assert used["mode"] == "measured" and used["source"] == "data/outcomes/save_rates.json"
    for action, entry in rates["actions"].items():
        assert used["actions"][action] == {
            "save_rate": entry["save_rate"],
            "from": "measured",
            "ci_low": entry["ci_low"],
            "ci_high": entry["ci_high"],
            "n_control": entry["n_control"],
        }
