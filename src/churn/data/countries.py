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


def latest_countries(
    transactions: Path, as_of: dt.date | None = None, customer_ids: pd.Series | None = None
) -> pd.DataFrame:
    """customer_id, country: the latest non-empty country per customer (orders on or
    before ``as_of``; all of them when None), of ``customer_ids`` only when given (a list
    needs its few hundred customers' countries, not those of millions: issue 20). Empty
    when the file has no country."""
    until = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of is not None else None
    con = session.connect()
    only = ""
    if customer_ids is not None:
        con.register("listed_ids", pd.DataFrame({CUSTOMER_ID: customer_ids.astype(str)}))
        only = f" AND {CUSTOMER_ID} IN (SELECT {CUSTOMER_ID} FROM listed_ids)"
    try:
        frame = con.execute(
            f"SELECT {CUSTOMER_ID}, arg_max(country, ts) AS country FROM read_parquet(?)"
            " WHERE country IS NOT NULL AND trim(country) <> ''"
            f" AND (CAST(? AS TIMESTAMP) IS NULL OR ts < CAST(? AS TIMESTAMP)){only}"
            f" GROUP BY {CUSTOMER_ID} ORDER BY {CUSTOMER_ID}",
            [str(transactions), until, until],
        ).df()
    finally:
        con.close()
    return frame.astype({CUSTOMER_ID: str, "country": str})
