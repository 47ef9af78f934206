"""MLflow as people browse it, through the real CLI in a real git repository.

`churn train` and `churn evaluate` run in process against a SQLite store in a
temporary project that git tracks: run names and tags, the curve PNGs, quiet
logs, and which runs may move the `challenger` alias (an experiment under
`dvc exp run`'s environment variables and a dirty tree may not;
`churn register` may).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ibis
import mlflow
import pytest
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from PIL import Image

from churn import cli
from churn.config import FeaturesConfig, SnapshotConfig, TrackingConfig
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.mlflow_noise import known_noise_silenced
from synthetic import canonical_transactions

NAME = "churn-classifier"
# What used to fill every run's log, and what a model that pickles would add.
NOISE = re.compile(
    r"Inferred schema contains integer column|pickle|Failed to resolve installed pip version"
    r"|Operation with range is deprecated|Validating input example|Downloading artifacts",
    re.IGNORECASE,
)


def git(repo: Path, *args: str) -> str:
    identity = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    proc = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **identity}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@dataclass
class Project:
    root: Path
    uri: str
    client: MlflowClient
    as_of: str

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD")

    def challenger(self) -> str:
        return str(self.client.get_model_version_by_alias(NAME, "challenger").version)

    def latest_train_run(self) -> Run:
        experiment = self.client.get_experiment_by_name("churn")
        assert experiment is not None
        runs = self.client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
        )
        return runs[0]


@dataclass
class Logged:
    stderr: str
    warnings: list[str]
    mlflow_records: list[logging.LogRecord]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def churn(*args: str) -> Logged:
    """``churn ARGS`` in process; stderr, every warning and every MLflow log record it let out."""
    stderr, handler = io.StringIO(), _Collect()
    logging.getLogger("mlflow").addHandler(handler)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stderr(stderr),
        ):
            warnings.simplefilter("always")
            cli.main(["--params", "params.yaml", *args])
    finally:
        logging.getLogger("mlflow").removeHandler(handler)
    return Logged(stderr.getvalue(), [str(w.message) for w in caught], handler.records)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A committed project (params, data paths, .gitignore for outputs) and its store."""
    root = tmp_path_factory.mktemp("mlflow-runs")
    transactions = canonical_transactions(seed=5, n_customers=1_200)
    tables = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=3), FeaturesConfig()
    )
    (root / "data").mkdir()
    transactions.to_parquet(root / "data" / "transactions.parquet")
    tables.labelled.to_parquet(root / "data" / "train.parquet")
    params = {
        "paths": {
            "transactions": "data/transactions.parquet",
            "train_features": "data/train.parquet",
        },
        "train": {"n_estimators": 30, "early_stopping_rounds": 10, "min_customers": 100},
        "evaluate": {"n_bootstrap": 10, "shap_sample": 100},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("data/\nmodels/\nmetrics/\nplots/\nmlflow.db\nmlruns/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for name in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_ROOT"):
            patch.delenv(name, raising=False)
        # conftest switches MLflow's bar off; here churn itself must
        patch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
        yield Project(root, uri, MlflowClient(uri), str(tables.calendar.as_of))
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def committed(project: Project) -> tuple[Logged, Run]:
    """`churn train` then `churn evaluate` from the committed tree."""
    logs = [churn("train"), churn("evaluate")]
    joined = Logged(
        "".join(log.stderr for log in logs),
        [w for log in logs for w in log.warnings],
        [r for log in logs for r in log.mlflow_records],
    )
    return joined, project.latest_train_run()


def test_train_and_evaluate_are_quiet(committed: tuple[Logged, Run]) -> None:
    logged, _ = committed
    assert [w for w in logged.warnings if NOISE.search(w)] == []
    assert [r.getMessage() for r in logged.mlflow_records if NOISE.search(r.getMessage())] == []
    assert [r.getMessage() for r in logged.mlflow_records if r.levelno < logging.WARNING] == []
    assert not NOISE.search(logged.stderr), logged.stderr


def test_the_run_says_what_ran(project: Project, committed: tuple[Logged, Run]) -> None:
    _, run = committed
    head = project.head()
    assert run.info.run_name == f"train {project.as_of} {head[:7]}"
    tags = run.data.tags
    assert (tags["stage"], tags["as_of"], tags["git_commit"]) == ("train", project.as_of, head)
    assert tags["git_dirty"] == "false"
    assert "dvc_exp_name" not in tags
    # A committed run outside experiments registers its model as the challenger.
    version = project.client.get_model_version_by_alias(NAME, "challenger")
    assert version.run_id == run.info.run_id
    assert tags["registration"] == f"challenger v{version.version}"


def test_the_curves_are_pngs_beside_the_csvs(
    project: Project, committed: tuple[Logged, Run], tmp_path: Path
) -> None:
    _, run = committed
    listed = {Path(a.path).name for a in project.client.list_artifacts(run.info.run_id, "plots")}
    for curve in ("roc", "pr", "calibration", "gains"):
        assert {f"{curve}.csv", f"{curve}.png"} <= listed
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="plots", dst_path=str(tmp_path)
        )
    )
    for png in sorted(local.glob("*.png")):
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG"
        assert png.stat().st_size < 60_000
    assert not list((project.root / "plots").glob("*.png"))  # DVC's folder holds only its CSVs


def test_an_experiment_leaves_the_challenger_and_register_moves_it(
    project: Project, committed: tuple[Logged, Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = project.challenger()
    monkeypatch.setenv("DVC_EXP_NAME", "big-leaves")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", project.head())
    trained = churn("train")
    monkeypatch.delenv("DVC_EXP_NAME")
    monkeypatch.delenv("DVC_EXP_BASELINE_REV")
    run = project.latest_train_run()
    assert project.challenger() == before
    assert run.data.tags["dvc_exp_name"] == "big-leaves"
    assert run.info.run_name == f"train {project.as_of} {project.head()[:7]} exp:big-leaves"
    assert project.client.search_model_versions(f"run_id = '{run.info.run_id}'") == []
    assert "`churn register big-leaves` makes this model the challenger" in trained.stderr

    churn("register", "big-leaves")
    version = project.client.get_model_version_by_alias(NAME, "challenger")
    assert version.run_id == run.info.run_id and str(version.version) != before
    churn("register", run.info.run_id)  # the same run again: the same version
    assert project.challenger() == str(version.version)


def test_a_dirty_tree_is_tagged_and_leaves_the_challenger(
    project: Project, committed: tuple[Logged, Run]
) -> None:
    before = project.challenger()
    params = project.root / "params.yaml"
    settings = yaml.safe_load(params.read_text())
    settings["train"]["num_leaves"] = 7
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    try:
        churn("train")
    finally:
        git(project.root, "checkout", "-q", "params.yaml")
    run = project.latest_train_run()
    assert run.data.tags["git_dirty"] == "true"
    assert run.info.run_name.endswith("-dirty")
    assert run.data.tags["registration"].startswith("skipped: the working tree had uncommitted")
    assert project.challenger() == before


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-such-exp", "'no-such-exp' is neither a run id nor a `dvc exp run` experiment"),
        ("0" * 32, f"no MLflow run {'0' * 32} in sqlite:///"),
    ],
)
def test_register_names_what_it_cannot_find(
    project: Project,
    committed: tuple[Logged, Run],
    capsys: pytest.CaptureFixture[str],
    ref: str,
    message: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--params", "params.yaml", "register", ref])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"churn: error: {message}"), lines


def test_only_the_known_noise_is_silenced() -> None:
    """A warning or MLflow log line outside the known list still reaches the user."""
    handler = _Collect()
    logging.getLogger("mlflow.utils.environment").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught, known_noise_silenced():
            warnings.simplefilter("always")
            warnings.warn("Hint: something new", UserWarning, stacklevel=1)
            logging.getLogger("mlflow.utils.environment").warning(
                "Failed to resolve installed pip version. ``pip`` will be ..."
            )
            logging.getLogger("mlflow.utils.environment").warning("a real problem")
    finally:
        logging.getLogger("mlflow.utils.environment").removeHandler(handler)
    assert [str(w.message) for w in caught] == ["Hint: something new"]
    assert [r.getMessage() for r in handler.records] == ["a real problem"]


def test_a_temporary_dvc_workspace_logs_to_the_project_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dvc exp run --temp`/`--queue` run stages in a copy of the repository under
    .dvc/tmp/exps/; a relative SQLite store there would vanish with the copy, so it
    goes where the same relative path points in the real project (DVC_ROOT)."""
    project = tmp_path.resolve()
    workspace = project / ".dvc" / "tmp" / "exps" / "standalone" / "tmp123"
    (workspace / ".dvc").mkdir(parents=True)
    (workspace / "pipeline").mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(project))
    config = TrackingConfig(uri="sqlite:///mlflow.db")
    monkeypatch.chdir(workspace)
    assert tracking.tracking_uri(config) == f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.chdir(workspace / "pipeline")  # a stage with wdir: pipeline
    assert tracking.tracking_uri(config) == f"sqlite:///{project / 'pipeline' / 'mlflow.db'}"
    # A plain `dvc repro`, at the root or in a stage's wdir, and absolute paths: unchanged.
    (project / "pipeline").mkdir()
    for where in (project, project / "pipeline"):
        monkeypatch.chdir(where)
        assert tracking.tracking_uri(config) == "sqlite:///mlflow.db"
    assert tracking.tracking_uri(TrackingConfig(uri="sqlite:////srv/m.db")) == "sqlite:////srv/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert tracking.tracking_uri(config) == "http://mlflow:5000"


def test_mlflow_info_lines_stay_off_unless_asked_for(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing MLflow resets its logger to INFO; configuring the store sets WARNING again,
    unless MLFLOW_LOGGING_LEVEL says otherwise."""
    mlflow_logger = logging.getLogger("mlflow")
    monkeypatch.setattr(mlflow_logger, "level", logging.INFO)
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    tracking.configure(TrackingConfig())
    assert mlflow_logger.level == logging.WARNING
    mlflow_logger.setLevel(logging.INFO)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "INFO")
    tracking.configure(TrackingConfig())
    assert mlflow_logger.level == logging.INFO
