"""A small real project for `churn serve`: last campaign measured, this month's list published.

In the current folder: the campaign list of 2026-06-01 and the purchases after it
(tests/outcomes/quick_lists.py, the writer the outcomes tests use), measured by the
read-out of `churn outcomes` (its MLflow logging left out); then this run's scores of
2026-09-01 for the same customers, picked, explained and written by the export stage's
own code (targeting, consent, budget, writers) and reported by the report stage. A
customers table gives names, emails and consent, with hostile text in a name and a
reason to check escaping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from churn.adhoc import export_files
from churn.config import load_params
from churn.schema import CUSTOMER_COLUMNS, REASON_COLUMNS, SCORE_COLUMNS
from churn.stages.export import param_filters, retention, write_list
from churn.stages.outcomes import measure
from churn.stages.report import write_report
from outcomes.quick_lists import write_campaign_project

EFFECTS = {"Personal call": 0.6, "Loyalty offer": 0.1, "Win-back email": 0.05}
AS_OF = pd.Timestamp("2026-09-01")
HOSTILE_NAME = '=HYPERLINK("http://evil.example/x","<b>click</b>")'
HOSTILE_REASON = "<script>alert('reason')</script> & more"
SEGMENT_CYCLE = ("At risk", "Champions", "Need attention", "Can't lose them", "Loyal")


def _scores(listed: pd.DataFrame) -> pd.DataFrame:
    """This run's score table for the customers of the last list (every SCORE_COLUMN)."""
    rng = np.random.default_rng(7)
    n = len(listed)
    probability = rng.beta(2, 2.5, n)
    value = rng.lognormal(5.0, 0.8, n)
    scores = pd.DataFrame(
        {
            "customer_id": listed["customer_id"].to_numpy(),
            "as_of": AS_OF,
            "churn_probability": probability,
            "risk_band": np.where(
                probability > 0.66, "high", np.where(probability > 0.33, "medium", "low")
            ),
            "p_alive": 1 - probability,
            "expected_value_12m": value,
            "clv_discounted": 2.5 * value,
            "next_purchase_date": AS_OF + pd.to_timedelta(rng.integers(5, 200, n), unit="D"),
            "value_at_risk": probability * value,
            "segment": [SEGMENT_CYCLE[i % len(SEGMENT_CYCLE)] for i in range(n)],
            "recency_days": rng.integers(3, 300, n).astype(float),
            "n_orders": rng.integers(1, 20, n),
            "revenue": value * rng.uniform(0.5, 3, n),
            "reason_1": np.where(probability > 0.5, "long time since the last order", "few orders"),
            "reason_2": "orders less often than before",
            "reason_3": "",
            "model_name": "churn-classifier",
            "model_version": "1",
            "model_uri": "models:/churn-classifier@champion",
        }
    )
    scores.loc[0, "reason_1"] = HOSTILE_REASON
    scores.loc[0, ["churn_probability", "expected_value_12m", "risk_band"]] = [0.9, 900.0, "high"]
    scores["value_at_risk"] = scores["churn_probability"] * scores["expected_value_12m"]
    scores = scores.sort_values("churn_probability", ascending=False, kind="stable")
    scores["risk_rank"] = np.arange(1, n + 1)
    return scores[list(SCORE_COLUMNS)].reset_index(drop=True)


def _customers(ids: pd.Series) -> pd.DataFrame:
    customers = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "email": [f"{c}@shop.example" for c in ids],
            "name": [f"Customer {c}" for c in ids],
            "country": "Germany",
            "marketing_consent": True,
        }
    )
    customers.loc[customers["customer_id"] == "c0", "name"] = HOSTILE_NAME
    return customers[list(CUSTOMER_COLUMNS)]


def build_project(n: int = 300) -> pd.DataFrame:
    """The project in the current folder; returns this run's score table."""
    listed = write_campaign_project(5, EFFECTS, n=n)
    Path("params.yaml").write_text("{}\n")  # every default
    params = load_params(Path("params.yaml"))
    measure(params)  # `churn outcomes` less its MLflow logging, which the page never reads
    scores = _scores(listed)
    scores.to_parquet(params.paths.scores)
    customers = _customers(scores["customer_id"])
    params.paths.customers.parent.mkdir(parents=True, exist_ok=True)
    customers.to_parquet(params.paths.customers)
    reasons = scores.set_index("customer_id")[list(REASON_COLUMNS)]

    def reasons_for(wanted: pd.Series) -> pd.DataFrame:
        return reasons.loc[wanted.to_numpy()].reset_index()

    chosen = retention(
        scores, customers, params, param_filters(params.export), reasons_for, lambda: scores
    )
    write_list(chosen, export_files(params, ["csv", "xlsx"], None, None))
    write_report(scores, chosen.targets, None, None, None, params, params.paths.report)
    return scores
