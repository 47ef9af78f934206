"""A T-learner uplift model: one LightGBM for contacted customers, one for the control group.

Uplift is the change a contact makes in a customer's chance to stay: P(retained |
contacted) - P(retained | not contacted). A T-learner fits each arm on its own
customers, with the churn model's features, and predicts the difference. It is the
simplest meta-learner and needs nothing beyond LightGBM; with a control group a
tenth of a list, the control model is the noisy half, so it is kept small
(shallow trees, large leaves). Stored like the churn model, as LightGBM text and
JSON, so loading it never unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.atomic import atomic_path, write_json
from churn.model.churn_model import feature_columns, learn_categories, model_matrix

# Columns of the outcome rows that are not features: the outcome, the arm, the list's own
# numbers (the churn model's output, not its input) and the ids.
NOT_FEATURES = (
    "campaign",
    "as_of",
    "treated",
    "retained",
    "contact_cost",
    "churn_probability",
    "expected_value_12m",
    "clv_discounted",  # the scoring snapshot's value for people (features.btyd_clv)
)
_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
ROUNDS = 150
UPLIFT_COLUMN = "predicted_uplift"  # in scores: churn.scoring.targeting ranks by it when present


def model_folder(outcomes_dir: Path) -> Path:
    """Where `churn outcomes` keeps the judged uplift model (paths.outcomes_dir/uplift_model)."""
    return outcomes_dir / "uplift_model"


@dataclass(frozen=True)
class UpliftModel:
    contacted: lgb.Booster  # P(retained | contacted)
    control: lgb.Booster  # P(retained | not contacted)
    features: list[str]
    categories: dict[str, tuple[str, ...]]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted uplift in retention probability for every row of ``frame``."""
        x = model_matrix(frame, self.features, self.categories)
        treated = np.asarray(self.contacted.predict(x), dtype="float64")
        return treated - np.asarray(self.control.predict(x), dtype="float64")

    def save(self, folder: Path) -> None:
        """Both boosters as LightGBM text plus the feature and category lists as JSON."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, booster in (("contacted", self.contacted), ("control", self.control)):
            with atomic_path(folder / f"{name}.txt") as tmp:
                booster.save_model(str(tmp))
        meta = {"features": self.features, "categories": self.categories}
        write_json(meta, folder / "uplift_model.json")

    @classmethod
    def load(cls, folder: Path) -> UpliftModel:
        meta = json.loads((folder / "uplift_model.json").read_text())
        return cls(
            contacted=lgb.Booster(model_file=str(folder / "contacted.txt")),
            control=lgb.Booster(model_file=str(folder / "control.txt")),
            features=list(meta["features"]),
            categories={k: tuple(v) for k, v in meta["categories"].items()},
        )


def fit_t_learner(rows: pd.DataFrame, seed: int = 0) -> UpliftModel:
    """Fit both arms on ``rows`` (outcome rows with features, churn.outcomes.uplift_rows)."""
    features = [c for c in feature_columns(rows) if c not in NOT_FEATURES]
    categories = learn_categories(rows, features)
    x = model_matrix(rows, features, categories)
    treated = rows["treated"].to_numpy(dtype=bool)
    y = rows["retained"].to_numpy(dtype="float64")
    params = {**_PARAMS, "seed": seed}
    boosters = [
        lgb.train(params, lgb.Dataset(x[arm], y[arm]), num_boost_round=ROUNDS)
        for arm in (treated, ~treated)
    ]
    return UpliftModel(boosters[0], boosters[1], features, categories)
