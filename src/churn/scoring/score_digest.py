"""What the report needs of a score table, without holding the table.

The report's numbers and charts are counts, sums and means per risk band and RFM
segment, a histogram of churn risk and which model scored. :func:`digest_frame`
computes them from a pandas frame (the nightly job, tests); :func:`digest_parquet`
has DuckDB compute the same from the Parquet file or Spark's folder of parts,
streaming it, so a 100 M-customer score table never reaches the driver's memory
(``engine: pyspark``; sums may differ from pandas' in the last bits only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from churn.data.sources import quote_literal

RISK_BINS = 20  # equal bins of [0, 1] in the risk chart
HIGH_RISK = "high"
ALL = "all"  # the histogram over every band
SEGMENT_STATS = ("customers", "high_risk", "mean_churn_probability", "mean_clv", "value_at_risk")
MODEL_FIELDS = ("model_name", "model_version", "model_uri")
EDGES = np.linspace(0.0, 1.0, RISK_BINS + 1)


@dataclass(frozen=True)
class ScoreDigest:
    """A score table's aggregates; None/empty where an older table lacks the column."""

    rows: int
    columns: frozenset[str]
    as_of: pd.Timestamp | None
    high_risk: int
    value_at_risk: float
    value_at_risk_high: float
    mean_clv: float
    bands: dict[str, int]  # customers per risk band
    segments: pd.DataFrame  # SEGMENT_STATS per segment, in order of first appearance
    histogram: dict[str, np.ndarray]  # counts per risk bin, per band and ALL
    model: dict[str, str]  # MODEL_FIELDS of the first row

    @property
    def has_risk(self) -> bool:
        return {"risk_band", "value_at_risk", "churn_probability"} <= self.columns


def digest_frame(scores: pd.DataFrame) -> ScoreDigest:
    """The digest of a score table held as a frame (its rows in rank order)."""
    cols = frozenset(str(c) for c in scores.columns)
    frame = scores.assign(
        _band=scores["risk_band"].astype(str) if "risk_band" in cols else "",
        _p=scores["churn_probability"] if "churn_probability" in cols else np.nan,
        _clv=scores["expected_value_12m"] if "expected_value_12m" in cols else np.nan,
        _var=scores["value_at_risk"] if "value_at_risk" in cols else np.nan,
    )
    high = frame["_band"] == HIGH_RISK
    groups = frame.assign(_high=high).groupby(frame["segment"].astype(str), sort=False)
    segments = groups.agg(
        customers=("segment", "size"),
        high_risk=("_high", "sum"),
        mean_churn_probability=("_p", "mean"),
        mean_clv=("_clv", "mean"),
        value_at_risk=("_var", "sum"),
    )
    histogram = {ALL: np.histogram(frame["_p"].clip(0, 1), bins=EDGES)[0]}
    for band in frame["_band"].unique():
        values = frame.loc[frame["_band"] == band, "_p"].clip(0, 1)
        histogram[str(band)] = np.histogram(values, bins=EDGES)[0]
    first = scores.iloc[0] if len(scores) else pd.Series(dtype=object)
    return ScoreDigest(
        rows=len(scores),
        columns=cols,
        as_of=pd.Timestamp(scores["as_of"].max()) if len(scores) else None,
        high_risk=int(high.sum()),
        value_at_risk=float(frame["_var"].sum()),
        value_at_risk_high=float(frame.loc[high, "_var"].sum()),
        mean_clv=float(frame["_clv"].mean()),
        bands={str(k): int(v) for k, v in frame["_band"].value_counts(sort=False).items()},
        segments=segments,
        histogram=histogram,
        model={f: str(first.get(f, "")) for f in MODEL_FIELDS},
    )


def digest_parquet(path: Path) -> ScoreDigest:
    """The digest of a score table on disk (a file, or a folder of parts Spark wrote),
    computed by DuckDB as it streams the rows."""
    con = duckdb.connect()
    try:
        source = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        con.execute(
            "CREATE TEMP VIEW s AS SELECT * FROM"
            f" read_parquet({quote_literal(source)}, hive_partitioning = false)"
        )
        cols = frozenset(str(r[0]) for r in con.execute("DESCRIBE s").fetchall())
        con.execute(f"CREATE TEMP VIEW t AS SELECT {_projection(cols)} FROM s")
        return _digest_sql(con, cols)
    finally:
        con.close()


def _projection(cols: frozenset[str]) -> str:
    """The columns the digest reads, NULL where an older table lacks one."""

    def pick(column: str, alias: str, cast: str) -> str:
        return f"CAST({column if column in cols else 'NULL'} AS {cast}) AS {alias}"

    return ", ".join(
        [
            "coalesce(CAST(segment AS VARCHAR), 'nan') AS seg",
            pick("risk_band", "band", "VARCHAR"),
            pick("churn_probability", "p", "DOUBLE"),
            pick("expected_value_12m", "clv", "DOUBLE"),
            pick("value_at_risk", "var", "DOUBLE"),
            pick("risk_rank", "rnk", "BIGINT"),
            pick("as_of", "as_of", "TIMESTAMP"),
        ]
    )


def _digest_sql(con: duckdb.DuckDBPyConnection, cols: frozenset[str]) -> ScoreDigest:
    high = "coalesce(band = 'high', false)"
    total = con.execute(
        f"SELECT count(*), max(as_of), count(*) FILTER ({high}), coalesce(sum(var), 0),"
        f" coalesce(sum(var) FILTER ({high}), 0), avg(clv) FROM t"
    ).fetchone()
    assert total is not None  # an aggregate always returns a row
    bands = con.execute("SELECT coalesce(band, 'None'), count(*) FROM t GROUP BY ALL").fetchall()
    segments = con.execute(
        f"SELECT seg, count(*), count(*) FILTER ({high}), avg(p), avg(clv),"
        " coalesce(sum(var), 0) FROM t GROUP BY seg ORDER BY min(rnk), seg"
    ).df()
    segments.columns = ["segment", *SEGMENT_STATS]
    bins = " + ".join(f"CAST(x >= ${k} AS INTEGER)" for k in range(1, RISK_BINS))
    counted = con.execute(
        f"SELECT coalesce(band, 'None'), {bins} AS i, count(*) FROM"
        " (SELECT band, least(greatest(p, 0), 1) AS x FROM t WHERE p IS NOT NULL)"
        " GROUP BY ALL",
        [float(e) for e in EDGES[1:RISK_BINS]],
    ).fetchall()
    histogram = {ALL: np.zeros(RISK_BINS, dtype="int64")}
    for band, i, n in counted:
        histogram.setdefault(str(band), np.zeros(RISK_BINS, dtype="int64"))[i] += n
        histogram[ALL][i] += n
    return ScoreDigest(
        rows=int(total[0]),
        columns=cols,
        as_of=pd.Timestamp(total[1]) if total[1] is not None else None,
        high_risk=int(total[2]),
        value_at_risk=float(total[3]),
        value_at_risk_high=float(total[4]),
        mean_clv=float(total[5]) if total[5] is not None else float("nan"),
        bands={str(b): int(n) for b, n in bands},
        segments=segments.set_index("segment"),
        histogram=histogram,
        model=_first_model(con, cols),
    )


def _first_model(con: duckdb.DuckDBPyConnection, cols: frozenset[str]) -> dict[str, str]:
    """Which model scored: the first row's (one model scores a whole run)."""
    present = [f for f in MODEL_FIELDS if f in cols]
    if not present:
        return dict.fromkeys(MODEL_FIELDS, "")
    order = " ORDER BY risk_rank" if "risk_rank" in cols else ""
    row = con.execute(f"SELECT {', '.join(present)} FROM s{order} LIMIT 1").fetchone()
    found = dict(zip(present, row or (), strict=False))
    return {f: str(found.get(f, "")) for f in MODEL_FIELDS}
