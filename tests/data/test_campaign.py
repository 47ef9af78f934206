"""`churn simulate-campaign`: the sample's process run forward, true effects by customer type."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.cli import main
from churn.config import CustomerTypeEffects, GenerateConfig, SimulateConfig
from churn.data.campaign import simulate_campaign
from churn.data.generate import generate_shop

AS_OF = dt.date(2026, 10, 1)
GENERATE = GenerateConfig(n_customers=3000, start=dt.date(2024, 10, 1), end=AS_OF)


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    made = generate_shop(GENERATE)
    raw = made.transactions.astype(str).replace({"nan": ""})
    return raw, made.truth


def _listed(truth: pd.DataFrame, n: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    picked = truth.sample(n, random_state=3)
    return pd.DataFrame(
        {
            "customer_id": picked["customer_id"].to_numpy(),
            "action": rng.choice(["Personal call", "Loyalty offer"], n),
            "control_group": rng.random(n) < 0.3,
        }
    )


def test_the_shop_runs_on_and_only_the_contacted_are_saved(shop: tuple) -> None:
    raw, truth = shop
    listed = _listed(truth)
    result = simulate_campaign(listed, truth, raw, AS_OF, 90, GENERATE, SimulateConfig())
    rows = result.transactions
    when = pd.to_datetime(rows["InvoiceDate"])
    assert when.min() >= pd.Timestamp(AS_OF) and when.max() < pd.Timestamp("2026-12-30")
    assert list(rows.columns) == ["Invoice", "InvoiceDate", "CustomerID", "Amount", "Country"]
    assert rows["Invoice"].astype(int).min() > pd.to_numeric(raw["Invoice"].str.lstrip("C")).max()
    gone = set(truth.loc[truth["dropout_at"] <= pd.Timestamp(AS_OF), "customer_id"])
    control = set(listed.loc[listed["control_group"], "customer_id"])
    buyers = set(rows["CustomerID"])
    assert not buyers & gone & control  # a lost cause in the control group never comes back
    assert len(buyers - set(listed["customer_id"])) > 100  # everyone active goes on buying
    assert set(result.truth["save_rate"]) == {"Personal call", "Loyalty offer"}
    types = result.truth["customer_types"]["Personal call"]
    assert types["lost_cause"] > 0 and types["persuadable_expected"] > 0


def test_the_true_save_rate_is_the_effect_when_every_type_gets_the_same(shop: tuple) -> None:
    raw, truth = shop
    same = SimulateConfig(
        effects={
            "Personal call": CustomerTypeEffects(persuadable=0.2, lost_cause=0.2),
            "Loyalty offer": CustomerTypeEffects(persuadable=0.0, lost_cause=0.0),
        }
    )
    result = simulate_campaign(_listed(truth), truth, raw, AS_OF, 90, GENERATE, same)
    assert result.truth["save_rate"] == {"Personal call": 0.2, "Loyalty offer": 0.0}


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"generate": {"n_customers": 300, "end": "2026-10-01"}}))
    return params


def test_without_the_generator_truth_it_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, monkeypatch)
    main(["generate"])
    Path("data/raw/dropout_truth.parquet").unlink()  # someone's own data: no hidden truth
    (Path("data/scores")).mkdir(parents=True)
    _listed_table().to_parquet("data/scores/targets.parquet")
    with pytest.raises(SystemExit) as exit_:
        main(["simulate-campaign", "--as-of", "2026-10-01"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert err[-1].startswith("churn: error: simulate-campaign works on the generated sample only")
    assert len([line for line in err if line.startswith("churn: error")]) == 1


def test_no_list_at_that_date_and_a_sample_already_run_on_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, monkeypatch)
    main(["generate"])
    with pytest.raises(SystemExit) as exit_:
        main(["simulate-campaign", "--as-of", "2026-10-01"])
    assert exit_.value.code == 2
    assert "no list published at 2026-10-01" in capsys.readouterr().err
    Path("data/scores").mkdir(parents=True)
    _listed_table("2026-06-01").to_parquet("data/scores/targets.parquet")
    with pytest.raises(SystemExit) as exit_:
        main(["simulate-campaign", "--as-of", "2026-06-01"])
    assert exit_.value.code == 2
    assert "already has transactions on or after 2026-06-01" in capsys.readouterr().err


def _listed_table(as_of: str = "2026-10-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["1"],
            "as_of": pd.Timestamp(as_of),
            "action": ["Personal call"],
            "targeted": [True],
            "control_group": [False],
        }
    )
