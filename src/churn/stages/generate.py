"""The `generate` stage: the seeded synthetic sample, written as the raw export."""

from __future__ import annotations

from dataclasses import dataclass

from churn.atomic import atomic_path, write_parquet
from churn.config import Params, raw_file
from churn.data.generate import generate_shop


@dataclass(frozen=True)
class Generated:
    """What `churn generate` wrote: transaction rows and the customers behind them."""

    transactions: int
    customers: int


def generate(params: Params) -> Generated:
    """Write the sample's transactions (CSV, like a shop's export) and hidden truth."""
    shop = generate_shop(params.generate)
    with atomic_path(raw_file(params.paths.raw_transactions, "generate")) as tmp:
        shop.transactions.to_csv(tmp, index=False, date_format="%Y-%m-%d %H:%M:%S")
    write_parquet(shop.truth, params.paths.truth)
    return Generated(transactions=len(shop.transactions), customers=len(shop.truth))
