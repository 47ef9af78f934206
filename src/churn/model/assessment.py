"""The full out-of-time assessment of a model: metrics, baselines and the curves behind them.

Kept apart from the CLI so the evaluate stage, the backtest and a reviewer's
notebook all compute exactly the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.config import EvaluateConfig
from churn.errors import UserError
from churn.model import evaluate as ev
from churn.model.baselines import baseline_probabilities
from churn.model.candidate_assessment import assess_candidates, n_candidates
from churn.model.churn_model import ChurnModel
from churn.progress import progress
from churn.schema import CUTOFF, LABEL, SPLIT, TEST_SPLIT


@dataclass(frozen=True)
class Assessment:
    """The model's own test metrics, the baselines' apart, and the curve tables.

    ``metrics`` is metrics/eval.json and ``baselines`` metrics/baselines.json: kept in
    two files so `dvc exp show` and `dvc metrics diff` lead with the model's numbers
    instead of burying them among a few dozen baseline columns.
    """

    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    curves: dict[str, pd.DataFrame]

    def with_baselines(self) -> dict[str, Any]:
        """Both in one dict, baselines under ``baselines`` (how the MLflow run names them:
        ``test_baselines.recency.roc_auc``)."""
        return {**self.metrics, "baselines": self.baselines}


def assess(
    model: ChurnModel, snapshots: pd.DataFrame, config: EvaluateConfig, budget_contacts: int
) -> Assessment:
    """Score the test cutoff, compare with every baseline, build ROC/PR/calibration/gains/SHAP."""
    test = snapshots[snapshots[SPLIT] == TEST_SPLIT]
    if test.empty or test[LABEL].nunique() < 2:
        raise UserError("the test cutoff needs both churners and retained customers to evaluate")
    y = test[LABEL].to_numpy()
    probability = model.churn_probability(test)
    metrics: dict[str, Any] = ev.classification_metrics(y, probability)
    metrics.update(ev.budget_metrics(y, probability, budget_contacts))
    candidates = baseline_probabilities(snapshots)
    n_resamples = config.n_bootstrap * (1 + len(candidates) + n_candidates(model))
    with progress("evaluate", n_resamples, "bootstrap resamples") as shown:
        if config.n_bootstrap:
            metrics.update(
                ev.bootstrap_intervals(y, probability, config.n_bootstrap, config.seed, shown)
            )
        metrics["cutoff"] = str(pd.Timestamp(test[CUTOFF].iloc[0]).date())
        baselines = {
            name: {
                **ev.classification_metrics(y, p),
                **ev.paired_margins(y, probability, p, config.n_bootstrap, config.seed, shown),
            }
            for name, p in candidates.items()
        }
        rivals = assess_candidates(model, test, probability, config.n_bootstrap, config.seed, shown)
    if rivals and model.ensemble is not None:
        metrics["served"] = model.ensemble.served
        metrics["candidates"] = rivals
    curves = {
        "roc.csv": ev.roc_points(y, probability),
        "pr.csv": ev.pr_points(y, probability),
        "calibration.csv": ev.calibration_points(y, probability, config.calibration_bins),
        "gains.csv": ev.gains_points(y, probability),
        "importance.csv": ev.feature_importance(model.booster, model.features),
        "shap.csv": ev.shap_summary(
            model.booster, model.matrix(test), config.shap_sample, config.seed
        ),
    }
    return Assessment(
        metrics=metrics, baselines=baselines, curves={k: v.round(6) for k, v in curves.items()}
    )
