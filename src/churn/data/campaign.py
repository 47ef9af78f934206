"""`churn simulate-campaign --as-of DATE`: what the published list's campaign did, on the sample.

Sample data only: it needs the generator's hidden truth (``paths.truth``), and
refuses without it. It takes the list published at DATE (the export's targets
table, or the nightly partition of that date), runs the shop forward over the
horizon untreated (churn.data.campaign_process), and then contacts the listed
non-control customers. The true effect of an action depends on the customer's
hidden type, so uplift is not the same as risk:

* **buy anyway**: active customers who buy within the horizon untreated; contact
  changes nothing for them;
* **persuadable**: active customers who would not have bought in time; contact makes
  them buy with probability ``simulate.effects.<action>.persuadable``;
* **lost cause**: customers already gone at DATE (the riskiest on any list); contact
  brings one back with probability ``simulate.effects.<action>.lost_cause``.

A saved customer places one order, on a random day of the horizon. The resulting
transactions are appended to the raw sample (``paths.raw_transactions``), and the
truth to ``paths.campaign_truth``: ``save_rate.<action>`` is defined exactly as the
measured save rate is, as an expectation over the listed customers of that action:
sum(q x effect) / sum(q), q = each one's chance of not buying untreated (the
churn among the control group, in expectation).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.atomic import atomic_path
from churn.config import GenerateConfig, SimulateConfig
from churn.data import campaign_process as process
from churn.data.generate import _SeasonalClock
from churn.errors import UserError

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # as `churn generate` writes InvoiceDate


@dataclass(frozen=True)
class SimulatedCampaign:
    transactions: pd.DataFrame  # new raw rows (Invoice, InvoiceDate, CustomerID, Amount, Country)
    truth: dict[str, Any]


def check_sample(truth_path: Path, raw: pd.DataFrame, as_of: dt.date) -> None:
    """Refuse anything but the generated sample, and a sample already run past ``as_of``."""
    if not truth_path.is_file():
        raise UserError(
            f"simulate-campaign works on the generated sample only: {truth_path} (paths.truth,"
            " the generator's hidden truth) is missing; run `churn generate` first"
        )
    last = pd.to_datetime(raw["InvoiceDate"]).max()
    if pd.notna(last) and last >= pd.Timestamp(as_of):
        raise UserError(
            f"the raw sample already has transactions on or after {as_of} (latest {last:%Y-%m-%d});"
            " a campaign is simulated from the end of a fresh sample: run `churn generate`"
            " (or `make run`), then simulate at the list's date"
        )


def _effects(listed: pd.DataFrame, alive: np.ndarray, config: SimulateConfig) -> np.ndarray:
    actions = sorted(set(listed["action"]))
    missing = [a for a in actions if a not in config.effects]
    if missing:
        raise UserError(
            f"simulate.effects has no true effect for action {missing[0]!r}; add"
            f" simulate.effects.{missing[0]}: {{persuadable: ..., lost_cause: ...}}"
        )
    persuadable = listed["action"].map({a: e.persuadable for a, e in config.effects.items()})
    lost = listed["action"].map({a: e.lost_cause for a, e in config.effects.items()})
    return np.where(alive, persuadable.to_numpy("float64"), lost.to_numpy("float64"))


def simulate_campaign(
    listed: pd.DataFrame,
    truth: pd.DataFrame,
    raw: pd.DataFrame,
    as_of: dt.date,
    horizon_days: int,
    generate: GenerateConfig,
    config: SimulateConfig,
) -> SimulatedCampaign:
    """Untreated purchases of every active customer plus the saved ones, and the truth."""
    rng = np.random.default_rng([config.seed, as_of.toordinal()])
    known = raw[raw["CustomerID"].astype(str) != ""]
    paid = known[pd.to_numeric(known["Amount"], errors="coerce") > 0]
    when = pd.to_datetime(paid["InvoiceDate"]).groupby(paid["CustomerID"].astype(str))
    purchases = pd.DataFrame({"last": when.max(), "count": when.size()})
    state = process.shop_state(rng, truth, purchases, generate.start, as_of)
    clock = _SeasonalClock(
        generate.start, as_of + dt.timedelta(days=horizon_days), generate.trend_per_year
    )
    from_day = float((as_of - generate.start).days)
    owners, days = process.untreated_purchases(rng, clock, state, from_day)

    position = pd.Series(np.arange(len(state.customer_id)), index=state.customer_id)
    listed = listed[listed["customer_id"].astype(str).isin(position.index)]
    idx = position[listed["customer_id"].astype(str)].to_numpy()
    effect = _effects(listed, state.alive[idx], config)
    bought = np.isin(idx, owners)
    treated = ~listed["control_group"].to_numpy(dtype=bool)
    saved = treated & ~bought & (rng.random(idx.size) < effect)
    saved_days = from_day + rng.uniform(0, horizon_days, int(saved.sum()))
    owners = np.concatenate([owners, idx[saved]])
    days = np.concatenate([days, saved_days])

    q = process.churn_probability(rng, clock, state, idx, from_day)
    invoices = pd.to_numeric(raw["Invoice"].astype(str).str.lstrip("C"), errors="coerce")
    next_invoice = int(invoices.max()) + 1 if invoices.notna().any() else 1
    rows = _raw_rows(rng, owners, days, state, known, generate, next_invoice)
    return SimulatedCampaign(
        rows, _truth(listed, state.alive[idx], q, effect, saved, as_of, config)
    )


def _truth(
    listed: pd.DataFrame,
    alive: np.ndarray,
    q: np.ndarray,
    effect: np.ndarray,
    saved: np.ndarray,
    as_of: dt.date,
    config: SimulateConfig,
) -> dict[str, Any]:
    """True save rate per action (expectation over the listed customers) and the types."""
    frame = pd.DataFrame(
        {"action": listed["action"].to_numpy(), "q": q, "qe": q * effect, "alive": alive}
    )
    save_rate, types = {}, {}
    for action, part in frame.groupby("action"):
        save_rate[str(action)] = round(float(part["qe"].sum() / part["q"].sum()), 6)
        types[str(action)] = {
            "listed": len(part),
            "lost_cause": int((~part["alive"]).sum()),
            "persuadable_expected": round(float(part.loc[part["alive"], "q"].sum()), 1),
            "buy_anyway_expected": round(float((1 - part.loc[part["alive"], "q"]).sum()), 1),
        }
    return {
        "as_of": as_of.isoformat(),
        "seed": config.seed,
        "effects": {a: e.model_dump() for a, e in config.effects.items()},
        "save_rate": save_rate,
        "customer_types": types,
        "saved_customers": int(saved.sum()),
    }


def _raw_rows(
    rng: np.random.Generator,
    owners: np.ndarray,
    days: np.ndarray,
    state: process.ShopState,
    known: pd.DataFrame,
    generate: GenerateConfig,
    next_invoice: int,
) -> pd.DataFrame:
    """The purchases as raw export rows: shop hours, each customer's own spend and country."""
    ids = state.customer_id[owners]
    amounts = pd.to_numeric(known["Amount"], errors="coerce")
    positive = known[amounts > 0]
    log_mean = np.log(amounts[amounts > 0]).groupby(positive["CustomerID"].astype(str)).mean()
    country = known.groupby(known["CustomerID"].astype(str))["Country"].last()
    within = generate.spend_log_sd_within
    mean = pd.Series(ids).map(log_mean).fillna(generate.spend_log_mean).to_numpy()
    amount = np.round(np.exp(mean + rng.normal(-0.5 * within**2, within, ids.size)), 2)
    day = np.floor(days) + rng.uniform(8 / 24, 20 / 24, days.size)
    when = pd.Timestamp(generate.start) + pd.to_timedelta(day, unit="D")
    amount = np.where(when.month.isin([11, 12]), np.round(amount * 1.3, 2), amount)
    rows = pd.DataFrame(
        {
            "InvoiceDate": when.floor("min"),
            "CustomerID": ids,
            "Amount": amount,
            "Country": pd.Series(ids).map(country).fillna("United Kingdom").to_numpy(),
        }
    ).sort_values(["InvoiceDate", "CustomerID"], kind="stable")
    rows.insert(0, "Invoice", (next_invoice + np.arange(len(rows))).astype(str))
    return rows.reset_index(drop=True)


NIGHTLY_TARGETS = "targets.parquet"  # a nightly partition's targets table


def published_list(as_of: dt.date, targets_table: Path, nightly_root: Path) -> pd.DataFrame:
    """The customers targeted (contacted or control) by the list published at ``as_of``."""
    partition = nightly_root / f"as_of={as_of.isoformat()}" / NIGHTLY_TARGETS
    for path in (targets_table, partition):
        if not path.is_file():
            continue
        table = pd.read_parquet(path)
        if len(table) and pd.Timestamp(table["as_of"].iloc[0]).date() == as_of:
            return table[table["targeted"]].reset_index(drop=True)
    raise UserError(
        f"no list published at {as_of}: neither {targets_table} (churn export) nor {partition}"
        " (churn nightly) holds one; pass the as-of date of a published list"
    )


def run_campaign(
    as_of: dt.date,
    raw_path: Path,
    truth_path: Path,
    listed: pd.DataFrame,
    horizon_days: int,
    generate: GenerateConfig,
    config: SimulateConfig,
) -> SimulatedCampaign:
    """Simulate the campaign and append its transactions to the raw sample (one rename)."""
    raw = pd.read_csv(raw_path, dtype=str, keep_default_na=False)
    check_sample(truth_path, raw, as_of)
    truth = pd.read_parquet(truth_path)
    result = simulate_campaign(listed, truth, raw, as_of, horizon_days, generate, config)
    with atomic_path(raw_path) as tmp:
        shutil.copyfile(raw_path, tmp)
        text = result.transactions.to_csv(index=False, header=False, date_format=DATE_FORMAT)
        with tmp.open("a", encoding="utf-8", newline="") as out:
            out.write(text)
    return result
