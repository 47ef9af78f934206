"""Read one MLflow run back for a reviewer: provenance, the baseline table, the curves.

The model-review notebook calls this so it holds no logic of its own and works
against any tracking server, not only the local SQLite file.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import pandas as pd
from mlflow.tracking import MlflowClient

from churn.model.tracking import comparison_table

PROVENANCE_TAGS = ("git_commit", "data_fingerprint", "test_cutoff")


@dataclass(frozen=True)
class RunReview:
    provenance: pd.Series
    comparison: pd.DataFrame
    curves: dict[str, pd.DataFrame]


def load_run_review(client: MlflowClient, run_id: str) -> RunReview:
    run = client.get_run(run_id)
    provenance = pd.Series(
        {
            "run_id": run_id,
            **{tag: run.data.tags.get(tag, "") for tag in PROVENANCE_TAGS},
            **{k: v for k, v in run.data.params.items() if k in ("num_leaves", "learning_rate")},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="plots", dst_path=tmp, tracking_uri=client.tracking_uri
        )
        curves = {path.name: pd.read_csv(path) for path in sorted(Path(local).glob("*.csv"))}
    return RunReview(
        provenance=provenance, comparison=comparison_table(run.data.metrics), curves=curves
    )
