"""The `evaluate` stage: metrics and plots on the test cutoff, logged to the training run."""

from __future__ import annotations

import pandas as pd

from churn.atomic import write_json
from churn.config import Params
from churn.model import tracking
from churn.model.assessment import Assessment, assess
from churn.model.loader import load_churn_model
from churn.model.model_record import ModelRecord
from churn.model.training_run import resume_training_run


def evaluate(params: Params, snapshots: pd.DataFrame) -> Assessment:
    """Assess ``paths.model_dir`` on the labelled ``snapshots``; write the DVC metrics and
    log them, with the curves, to the MLflow run that trained the model."""
    model = load_churn_model(str(params.paths.model_dir), params.paths.train_run)
    result = assess(model, snapshots, params.evaluate, params.export.top_n)
    write_json(result.metrics, params.paths.eval_metrics)
    write_json(result.baselines, params.paths.baseline_metrics)
    record = ModelRecord.of_train_run(params.paths.train_run)
    tracking.configure(params.tracking)
    with resume_training_run(params.tracking.experiment, record):
        tracking.log_assessment(result.with_baselines(), result.curves, params.paths.plots_dir)
    return result
