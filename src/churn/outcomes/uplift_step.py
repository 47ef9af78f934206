"""The uplift part of `churn outcomes`: outcome rows, features, judgement, saved model.

Kept apart from churn.outcomes.publish so the read-out stays cheap when the data
does not allow uplift: the sizes are checked on the outcome rows first, and the
snapshots (one feature build per list date) are built only when a model will be
fitted. A model from an earlier read-out that can no longer be judged is removed,
so ``targeting.rank_by: uplift`` never ranks by a model nobody checked.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn.config import FeaturesConfig, OutcomesConfig, SnapshotConfig
from churn.outcomes.uplift import judge_uplift, shortfall, split_by_campaign
from churn.outcomes.uplift_model import model_folder
from churn.outcomes.uplift_rows import closed_outcomes, with_features

log = logging.getLogger(__name__)


def run_uplift(
    list_files: Sequence[Path],
    transactions: Path,
    outcomes_dir: Path,
    config: OutcomesConfig,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> dict[str, Any]:
    """The ``uplift`` block of metrics/outcomes.json (see churn.outcomes.uplift)."""
    rows = closed_outcomes(list_files, transactions, snapshots.horizon_days, config.campaign_days)
    folder = model_folder(outcomes_dir)
    fit, judge = split_by_campaign(rows)
    if shortfall(fit, judge, config) is None:
        rows = with_features(rows, transactions, snapshots, features)
    block, model = judge_uplift(rows, config)
    if model is None:
        shutil.rmtree(folder, ignore_errors=True)
        log.info("outcomes: uplift not fitted (%s)", block["reason"])
        return block
    model.save(folder)
    block["model"] = str(folder)
    log.info(
        "outcomes: uplift Qini %.4f vs risk %.4f on %s -> ranking by %s wins",
        block["qini_uplift"],
        block["qini_risk"],
        block["judged_campaign"],
        block["winner"],
    )
    return block
