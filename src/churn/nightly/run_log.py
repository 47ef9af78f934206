"""The MLflow record of nightly runs: one run per attempt, published or refused.

The manifest in the partition is the source of truth; MLflow makes the job's
history searchable (``tags.status = 'refused'``, row counts and PSI over time
as metrics) next to the training runs that produced the model.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Any

from churn.config import Params
from churn.errors import UserError
from churn.model.provenance import tracking_uri
from churn.nightly.reachability import describe

log = logging.getLogger(__name__)


def log_manifest(manifest: dict[str, Any], status: str, experiment: str, reason: str = "") -> str:
    """Log a run's manifest to MLflow experiment ``experiment``; returns the run id."""
    import mlflow

    from churn.model.tracking import log_json_metrics

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"nightly {manifest['as_of']}") as run:
        mlflow.set_tags(
            {
                "stage": "nightly",
                "status": status,
                "as_of": manifest["as_of"],
                "reason": reason,
                "exit_code": str(manifest.get("exit_code", 0)),
                "model_version": manifest.get("model", {}).get("version", ""),
                "data_fingerprint": manifest.get("data", {}).get("fingerprint", ""),
                "git_commit": manifest.get("code", {}).get("git_commit", ""),
            }
        )
        log_json_metrics(
            {k: manifest[k] for k in ("rows", "timings") if k in manifest}
            | {"psi": manifest.get("psi", {}).get("values", {})}
        )
        mlflow.log_dict(manifest, "manifest.json")
    return str(run.info.run_id)


def configure(params: Params) -> None:
    """Point MLflow at the tracking store without talking to it yet.

    ``churn.model.tracking.configure`` also sets the experiment, a round trip to
    the server that, were it down, would retry for minutes before the job's own
    bounds (churn.nightly.reachability) apply; the job names its experiment
    when it logs instead.

    Without importing MLflow (1-2 s of the job's start, issue 20): the URI goes where
    ``mlflow.set_tracking_uri`` itself puts it, ``MLFLOW_TRACKING_URI``, which MLflow
    reads once it is imported (on the probe's thread, beside the first steps). An
    MLflow already imported (a notebook, a test) may hold another URI: it is set there.
    """
    uri = tracking_uri(params.tracking)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(uri)


def log_unpublished(as_of: dt.date, exc: BaseException, seconds: float, experiment: str) -> None:
    """Record a run that did not publish: ``refused`` by a guard or input check (a
    ``UserError`` and its exit code), or ``failed`` on anything else (a bug, a full disk).

    Best effort: a refusal caused by the tracking server itself cannot be logged there.
    """
    refused = isinstance(exc, UserError)
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    manifest = {
        "as_of": as_of.isoformat(),
        "status": "refused" if refused else "failed",
        "exit_code": exc.exit_code if isinstance(exc, UserError) else 1,
        "reason": reason if refused else f"{type(exc).__name__}: {reason}",
        "timings": {"total": round(seconds, 3)},
    }
    try:
        log_manifest(manifest, str(manifest["status"]), experiment, str(manifest["reason"])[:500])
    except Exception as log_exc:  # the original error must still reach the caller
        log.warning(
            "nightly: could not log the %s run to MLflow (%s)",
            manifest["status"],
            describe(log_exc),
        )
