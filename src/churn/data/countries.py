"""Each customer's country from the transactions, for a list without a customers table.

A shop that exports only its order lines still knows where each customer ordered from;
a retention list with an empty Country column (#18) hides that. The customer's country
is the one of their latest order that names one, so a move shows up, and only orders up
to the as-of date count (a replayed list shows what was known then).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from churn.data import session
from churn.schema import CUSTOMER_ID


def latest_countries(transactions: Path, as_of: dt.date | None = None) -> pd.DataFrame:
    """customer_id, country: the latest non-empty country per customer (orders on or
    before ``as_of``; all of them when None). Empty when the file has no country."""
    until = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of is not None else None
    con = session.connect()
    try:
        frame = con.execute(
            f"SELECT {CUSTOMER_ID}, arg_max(country, ts) AS country FROM read_parquet(?)"
            " WHERE country IS NOT NULL AND trim(country) <> ''"
            " AND (CAST(? AS TIMESTAMP) IS NULL OR ts < CAST(? AS TIMESTAMP))"
            f" GROUP BY {CUSTOMER_ID} ORDER BY {CUSTOMER_ID}",
            [str(transactions), until, until],
        ).df()
    finally:
        con.close()
    return frame.astype({CUSTOMER_ID: str, "country": str})
