"""What a list ranks by: :func:`ranking_in_effect`, the uplift hook of export and nightly.

``targeting.rank_by`` says it. ``risk`` (the default) keeps the expected gain of
churn.scoring.targeting: churn risk x value x save rate - cost. ``uplift`` ranks by
predicted uplift x value - cost, with the uplift model `churn outcomes` saved
(churn.outcomes.uplift); it fails with one line when there is none. ``auto`` uses
uplift only when metrics/outcomes.json says it won out of time, and risk
otherwise. The predicted uplift enters the scores as the column ``predicted_uplift``,
which churn.scoring.targeting reads; each list records what it ranked by and why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import TargetingConfig
from churn.errors import UserError
from churn.outcomes.uplift_model import UPLIFT_COLUMN, UpliftModel, model_folder

log = logging.getLogger(__name__)


def uplift_verdict(outcomes_metrics: Path) -> str | None:
    """Why the last read-out did not pick uplift, or None when it did."""
    if not outcomes_metrics.is_file():
        return f"no read-out yet ({outcomes_metrics}: run `churn outcomes`)"
    try:
        block = json.loads(outcomes_metrics.read_text(encoding="utf-8")).get("uplift") or {}
    except ValueError:
        return f"{outcomes_metrics} is not JSON"
    if not block:
        return f"{outcomes_metrics} has no uplift verdict (rerun `churn outcomes`)"
    if block.get("winner") != "uplift":
        return str(block.get("reason") or "risk ranking won the last out-of-time comparison")
    return None


def ranking_in_effect(
    targeting: TargetingConfig,
    scores: pd.DataFrame,
    outcomes_dir: Path,
    outcomes_metrics: Path,
    snapshot: Callable[[], pd.DataFrame],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``scores`` (with ``predicted_uplift`` when ranking by uplift) and the record of it.

    ``snapshot`` gives the scoring snapshot of the scored customers (the uplift model's
    features); it is called only when uplift is used.
    """
    model, record = uplift_in_effect(targeting, outcomes_dir, outcomes_metrics)
    if model is None:
        return scores, record
    features = snapshot()
    uplift = pd.Series(model.predict(features), index=features["customer_id"].astype(str))
    out = scores.copy()
    out[UPLIFT_COLUMN] = out["customer_id"].astype(str).map(uplift).to_numpy(dtype="float64")
    return out, record


def uplift_in_effect(
    targeting: TargetingConfig, outcomes_dir: Path, outcomes_metrics: Path
) -> tuple[UpliftModel | None, dict[str, Any]]:
    """The uplift model the list ranks by (None: by risk) and the record of why; one
    decision for the pandas ranking above and Spark's (churn.outcomes.spark_uplift)."""
    wanted = targeting.rank_by
    if wanted == "risk":
        return None, {"rank_by": "risk", "requested": "risk"}
    folder = model_folder(outcomes_dir)
    why = uplift_verdict(outcomes_metrics) if wanted == "auto" else None
    if why is None and not (folder / "uplift_model.json").is_file():
        why = f"no uplift model in {folder}"
        if wanted == "uplift":
            raise UserError(
                f"targeting.rank_by is 'uplift' but there is no uplift model in {folder}: run"
                " `churn outcomes` once two closed campaigns have enough outcomes"
                " (outcomes.uplift_min_contacted/_control), or set targeting.rank_by: risk"
            )
    if why is not None:
        log.info("ranking: by risk (targeting.rank_by %s: %s)", wanted, why)
        return None, {"rank_by": "risk", "requested": wanted, "why": why}
    log.info("ranking: by predicted uplift x value - cost (model %s)", folder)
    record = {"rank_by": "uplift", "requested": wanted, "model": str(folder)}
    return UpliftModel.load(folder), record
