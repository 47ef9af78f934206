"""Every notebook under notebooks/ runs top to bottom on a small shop, so none can rot.

The notebooks read their inputs from CHURN_TRANSACTIONS / CHURN_SNAPSHOTS, which
point at data built here; they execute from an in-memory copy, so notebooks/ is
never written to.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ibis
import mlflow
import nbformat
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

from churn.config import (
    EvaluateConfig,
    FeaturesConfig,
    SnapshotConfig,
    TrainConfig,
)
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.assessment import assess
from churn.model.train import train_model
from synthetic import canonical_transactions

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "python3"
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("notebook-data")
    transactions = canonical_transactions(seed=11, n_customers=1_500)
    tables = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=4), FeaturesConfig()
    )
    paths = {
        "CHURN_TRANSACTIONS": folder / "transactions.parquet",
        "CHURN_SNAPSHOTS": folder / "train.parquet",
    }
    transactions.to_parquet(paths["CHURN_TRANSACTIONS"], index=False)
    tables.labelled.to_parquet(paths["CHURN_SNAPSHOTS"], index=False)
    env = {name: str(path) for name, path in paths.items()}
    env.update(_logged_run(tables.labelled, folder))
    return env


def _logged_run(labelled: pd.DataFrame, folder: Path) -> dict[str, str]:
    """A real training run in a throwaway MLflow store, as `churn train` + `evaluate` log it."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = train_model(labelled, TrainConfig(n_estimators=100, min_customers=100))
    assessment = assess(result.model, labelled, EvaluateConfig(n_bootstrap=20), 100)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("review", artifact_location=str(folder / "art"))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.set_tags({"git_commit": "test", "data_fingerprint": "test"})
            tracking.log_assessment(
                assessment.with_baselines(), assessment.curves, folder / "plots"
            )
    finally:
        mlflow.set_tracking_uri(None)
    return {"CHURN_MLFLOW_URI": uri, "CHURN_RUN_ID": run.info.run_id}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Extra environment that makes the python3 kernel findable (and quiet) in a fresh venv.

    ipykernel ships its kernelspec inside the venv (share/jupyter/kernels/python3), and
    jupyter_client launches "python" in it as sys.executable, so the kernel runs this
    interpreter. Only if that spec is missing is one installed into a temporary prefix.
    """
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env["MPLCONFIGDIR"] = str(tmp_path_factory.mktemp("mplconfig"))
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        prefix = tmp_path_factory.mktemp("kernel")
        install(kernel_name=KERNEL, prefix=str(prefix))
        env["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    return env


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert _notebooks(), f"no notebooks in {NOTEBOOKS}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_saved_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear outputs"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_runs(
    path: Path,
    data: dict[str, str],
    kernel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {**data, **kernel_env}.items():
        monkeypatch.setenv(name, value)
    before = {p: p.stat().st_mtime_ns for p in NOTEBOOKS.rglob("*")}
    notebook = nbformat.read(path, as_version=4)
    # Appended to the in-memory copy only: proves the kernel runs this interpreter.
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert not errors
    assert notebook.cells[-1].outputs[0]["text"].strip() == sys.executable
    assert {p: p.stat().st_mtime_ns for p in NOTEBOOKS.rglob("*")} == before, (
        f"executing {path.name} wrote into notebooks/"
    )
