"""The promotion gate: production moves to a new model only when it is at least as good.

Both models are scored on the same rows (the current test cutoff), never on
numbers each logged at its own time: a champion evaluated on last quarter's
cutoff and a challenger on this quarter's are not comparable, since churn
base rates move with the season.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from churn.errors import UserError
from churn.model.churn_model import ChurnModel
from churn.schema import LABEL

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class GateMetrics:
    roc_auc: float
    brier: float


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger: GateMetrics
    champion: GateMetrics | None


def gate_metrics(model: ChurnModel, test: pd.DataFrame) -> GateMetrics:
    probability = model.churn_probability(test)
    y = test[LABEL].to_numpy()
    return GateMetrics(
        roc_auc=float(roc_auc_score(y, probability)),
        brier=float(brier_score_loss(y, np.clip(probability, 0, 1))),
    )


def judge(
    challenger: GateMetrics, champion: GateMetrics, auc_tolerance: float, brier_tolerance: float
) -> tuple[bool, str]:
    """At least as good on both: AUC not lower and Brier not higher, beyond the tolerances."""
    auc_ok = challenger.roc_auc >= champion.roc_auc - auc_tolerance
    brier_ok = challenger.brier <= champion.brier + brier_tolerance
    detail = (
        f"AUC {challenger.roc_auc:.4f} vs {champion.roc_auc:.4f} (tolerance {auc_tolerance}),"
        f" Brier {challenger.brier:.4f} vs {champion.brier:.4f} (tolerance {brier_tolerance})"
    )
    if auc_ok and brier_ok:
        return True, f"challenger is at least as good: {detail}"
    worse = " and ".join(name for name, ok in (("AUC", auc_ok), ("Brier", brier_ok)) if not ok)
    return False, f"challenger is worse on {worse}: {detail}"


def _version_for(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def promote(
    client: MlflowClient,
    name: str,
    test: pd.DataFrame,
    load: Callable[[str], ChurnModel],
    auc_tolerance: float,
    brier_tolerance: float,
) -> PromotionDecision:
    """Compare challenger and champion on ``test`` and move the champion alias if deserved.

    ``load`` turns a models:/ URI into a ChurnModel (injected so the CLI's error
    handling applies and tests can use any store).
    """
    challenger_version = _version_for(client, name, CHALLENGER)
    if challenger_version is None:
        raise UserError(f"registered model {name!r} has no @{CHALLENGER} (run `churn train`)")
    challenger = gate_metrics(load(f"models:/{name}@{CHALLENGER}"), test)
    champion_version = _version_for(client, name, CHAMPION)
    champion: GateMetrics | None = None
    if champion_version is None:
        promoted, reason = True, "no champion yet: the first challenger becomes champion"
    elif champion_version == challenger_version:
        promoted, reason = False, f"version {challenger_version} is already the champion"
    else:
        try:
            champion = gate_metrics(load(f"models:/{name}@{CHAMPION}"), test)
        except (ValueError, UserError) as exc:
            promoted = True
            reason = f"the champion cannot score the current features ({exc}); replacing it"
        else:
            promoted, reason = judge(challenger, champion, auc_tolerance, brier_tolerance)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger_version)
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        challenger_version=challenger_version,
        champion_version=champion_version,
        challenger=challenger,
        champion=champion,
    )
