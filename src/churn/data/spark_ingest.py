"""Raw export in, canonical transactions out, on Spark (``engine: pyspark``).

The same ingest as :mod:`churn.data.ingest`, run on the executors for sources
that outgrow one machine: the same column recognition (``churn.data.columns``),
the same parsing rules (``churn.data.spark_parsing``), the same quarantine
reasons in the same order (``churn.data.quarantine``), duplicate lines found the
same way (every later copy of a line, by position) and the same accounting
(``rows_in == rows_out + rows_quarantined``, checked on what was written, and
``ingest.max_bad_fraction`` checked before anything is published). Transactions
and quarantine are written by Spark as Parquet folders; only counts reach the
driver. Both folders hold their rows in file order, as DuckDB's files do, so a rerun
writes the same parts: the scan's partitions already are in file order and the rows
never leave them (the few later copies of lines are broadcast), unless an export
repeats itself wholesale, when a range sort on the row's position restores it.
The source is read twice (partition sizes, then the rows, kept in memory for the
aggregate and the two writes), the first rows' dates once more.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from churn.config import IngestConfig
from churn.data import spark_parsing as sp
from churn.data.columns import TRANSACTION_ALIASES, require, resolve_columns
from churn.data.ingest import accounted_report
from churn.data.ingest_report import IngestReport
from churn.data.quarantine import (
    PlausibleWindow,
    Rules,
    check_bad_fraction,
)
from churn.data.spark_parts import fix_part_names
from churn.data.spark_sources import CORRUPT, FILE, FILE_INDEX, POSITION, open_spark_source
from churn.errors import UserError
from churn.schema import OPTIONAL_TRANSACTION_COLUMNS, QUARANTINE_COLUMNS, TRANSACTION_COLUMNS

log = logging.getLogger(__name__)

_DAYFIRST_SAMPLE = 200_000
# Later copies of lines up to this many are broadcast (8 bytes each) so whole rows never
# shuffle; above it (an export appended to itself) a shuffle join and a sort take over.
_BROADCAST_COPIES = 2_000_000


def spark_ingest(
    spark: Any,
    source: Path,
    config: IngestConfig,
    as_of: dt.date | None,
    transactions: Path,
    quarantine: Path,
    *,
    today: dt.date | None = None,
) -> IngestReport:
    """Read, parse, validate and quarantine on Spark into two Parquet folders.

    ``transactions`` and ``quarantine`` must not exist yet (the caller passes
    temporary folders and publishes them). Raises a UserError, having written
    nothing, when the malformed share is above ``ingest.max_bad_fraction``.
    """
    plausible = PlausibleWindow.around(
        config.plausible_from,
        config.plausible_future_days,
        as_of,
        today or dt.datetime.now(dt.UTC).date(),
    )
    src = open_spark_source(spark, source, config.csv)
    columns = resolve_columns(
        src.columns, config.columns.model_dump(), TRANSACTION_ALIASES, "ingest.columns"
    )
    require(columns, src.columns, "ingest.columns")
    ts_column = columns["timestamp"]
    assert ts_column is not None
    dayfirst, dayfirst_from = _dayfirst(src.rows, ts_column, config)
    rules = Rules(config.max_amount, as_of, config.cancellations == "drop", plausible)
    base = _staged(src.frame, src.columns, columns, config, dayfirst, rules).persist()
    later = _later_copies(base).persist()
    try:
        staged, ordered = _with_duplicates(base, later)
        rows_in, reasons, starts = _accounting(staged)
        if not rows_in:
            raise UserError(f"{src.files[0]}: no data rows (only a header?); nothing to ingest")
        check_bad_fraction(reasons, rows_in, config.max_bad_fraction)
        output = [*TRANSACTION_COLUMNS, *filter(columns.get, OPTIONAL_TRANSACTION_COLUMNS)]
        clean = ordered(staged.filter("reason IS NULL"))
        clean.select(*output).write.parquet(str(transactions))
        _quarantined(spark, ordered(staged.filter("reason IS NOT NULL")), starts).write.parquet(
            str(quarantine)
        )
        fix_part_names(transactions)  # a replay writes the same folders, names included
        fix_part_names(quarantine)
    finally:
        later.unpersist()
        base.unpersist()
    report = _report(spark, rows_in, transactions, quarantine)
    return replace(
        report,
        files=src.files,
        columns={k: v for k, v in columns.items() if v is not None},
        dayfirst=dayfirst,
        dayfirst_from=dayfirst_from,
        cancellations=config.cancellations,
    )


def _dayfirst(frame: Any, column: str, config: IngestConfig) -> tuple[bool, str]:
    """Params win; else ``a/b/yyyy`` cells in the first rows decide; else day first."""
    if config.timestamp_format:
        return bool(config.dayfirst), "timestamp_format"
    if config.dayfirst is not None:
        return config.dayfirst, "params"
    day, month = sp.dayfirst_evidence(column)
    # The first rows: a limit takes the partitions in order (no sort of the whole source).
    sample = (
        frame.select(sp.ident(column))
        .limit(_DAYFIRST_SAMPLE)
        .selectExpr(f"{day} AS a", f"{month} AS b", f"{sp.text(column)} AS raw")
    )
    row = sample.selectExpr(
        "count_if(a > 12) AS first_big",
        "count_if(b > 12) AS second_big",
        "first(raw) FILTER (WHERE a > 12) AS day_example",
        "first(raw) FILTER (WHERE b > 12) AS month_example",
    ).first()
    if row.first_big and row.second_big:
        raise UserError(
            f"dates in column {column!r} mix day-first ({row.day_example}) and month-first"
            f" ({row.month_example}) orders; set ingest.timestamp_format (e.g. '%d/%m/%Y %H:%M')"
        )
    if row.first_big:
        return True, "data"
    if row.second_big:
        return False, "data"
    return True, "default"


def _parsed(
    columns: Mapping[str, str | None], config: IngestConfig, dayfirst: bool
) -> dict[str, str]:
    """Each canonical field's Spark SQL from its source column (typed NULL when none)."""
    nulls = config.null_values

    def opt(field: str, sql: Any, kind: str = "STRING") -> str:
        column = columns.get(field)
        return sql(column) if column else f"CAST(NULL AS {kind})"

    ts_column = columns["timestamp"]
    assert ts_column is not None
    quantity = opt("quantity", lambda c: sp.number(c, config.decimal_separator), "DOUBLE")
    unit_price = opt("unit_price", lambda c: sp.number(c, config.decimal_separator), "DOUBLE")
    if columns.get("amount"):
        amount = sp.number(str(columns["amount"]), config.decimal_separator)
        raw_amount = sp.raw(str(columns["amount"]))
    else:
        amount = f"round(({quantity}) * ({unit_price}), 6)"
        raw_amount = f"concat_ws(' x ', {opt('quantity', sp.raw)}, {opt('unit_price', sp.raw)})"
    return {
        "customer_id": opt("customer_id", lambda c: sp.identifier(c, nulls)),
        "order_id": opt("order_id", lambda c: sp.text(c, nulls)),
        "ts": sp.timestamp(ts_column, config.timestamp_format, dayfirst),
        "amount": amount,
        "quantity": quantity,
        "unit_price": unit_price,
        "product_id": opt("product_id", lambda c: sp.identifier(c, nulls)),
        "country": opt("country", lambda c: sp.text(c, nulls)),
        "channel": opt("channel", lambda c: sp.text(c, nulls)),
        "raw_timestamp": sp.raw(ts_column),
        "raw_amount": raw_amount,
    }


def _reason(source_columns: list[str], rules: Rules, has_corrupt: bool) -> str:
    """The first rule a row breaks (as :func:`churn.data.quarantine.reason`), NULL if none."""
    cells = ", ".join(sp.raw(c) for c in source_columns)
    after = (
        f"WHEN __ts >= TIMESTAMP_NTZ {sp.literal(rules.as_of.isoformat())} THEN 'after_as_of'"
        if rules.as_of
        else ""
    )
    cancel = "WHEN __cancelled THEN 'cancellation'" if rules.drop_cancellations else ""
    corrupt = f"WHEN {sp.ident(CORRUPT)} IS NOT NULL THEN 'malformed_line'" if has_corrupt else ""
    earliest = sp.literal(rules.plausible.earliest.isoformat())
    before = sp.literal(rules.plausible.before.isoformat())
    return f"""CASE
        {corrupt}
        WHEN coalesce({cells}) IS NULL THEN 'empty_row'
        WHEN __ts IS NULL THEN 'unparseable_timestamp'
        WHEN __ts < TIMESTAMP_NTZ {earliest} OR __ts >= TIMESTAMP_NTZ {before}
            THEN 'implausible_timestamp'
        WHEN __amount IS NULL OR isnan(__amount) OR abs(__amount) = double('infinity')
            THEN 'non_numeric_amount'
        WHEN abs(__amount) > {float(rules.max_amount)!r} THEN 'absurd_amount'
        {after}
        WHEN __customer_id IS NULL THEN 'guest_order'
        WHEN __amount = 0 THEN 'zero_amount'
        {cancel}
        ELSE NULL END"""


def _staged(
    frame: Any,
    source_columns: list[str],
    columns: Mapping[str, str | None],
    config: IngestConfig,
    dayfirst: bool,
    rules: Rules,
) -> Any:
    """One row out per row in: parsed values, reason (or NULL), line hashes and position."""
    parsed = _parsed(columns, config, dayfirst)
    tests = ["__amount < 0"]
    if columns.get("quantity"):
        tests.append("__quantity < 0")
    if columns.get("order_id") and config.cancellation_prefix:
        tests.append(f"startswith(__order_id, {sp.literal(config.cancellation_prefix)})")
    has_corrupt = CORRUPT in frame.columns
    cells = [sp.raw(c) for c in source_columns]
    keep = [FILE, FILE_INDEX, POSITION, *([sp.ident(CORRUPT)] if has_corrupt else [])]
    first = frame.selectExpr(
        *keep,
        *(f"{sql} AS __{name}" for name, sql in parsed.items()),
        f"xxhash64({', '.join(cells)}) AS line_hash",
        f"hash('churn', {', '.join(reversed(cells))}) AS line_hash2",
        *(sp.ident(c) for c in source_columns),
    )
    reason = _reason(source_columns, rules, has_corrupt)
    net = config.cancellations == "net"

    def signed(name: str) -> str:
        return f"CASE WHEN __cancelled THEN -abs({name}) ELSE {name} END" if net else name

    with_cancel = first.selectExpr("*", f"coalesce({' OR '.join(tests)}, false) AS __cancelled")
    return with_cancel.selectExpr(
        "__customer_id AS customer_id", "__order_id AS order_id", "__ts AS ts",
        f"{signed('__amount')} AS amount", "__country AS country",
        f"{signed('__quantity')} AS quantity", "__unit_price AS unit_price",
        "__product_id AS product_id", "__channel AS channel",
        f"{reason} AS reason", f"{FILE} AS source_file", f"{FILE_INDEX} AS file_index",
        POSITION, "__raw_timestamp AS raw_timestamp", "__raw_amount AS raw_amount",
        f"{sp.ident(CORRUPT)} AS raw_line" if has_corrupt else "CAST(NULL AS STRING) AS raw_line",
        "line_hash", "line_hash2",
    )  # fmt: skip


def _later_copies(staged: Any) -> Any:
    """Positions of every later copy of a line (a wholly empty row repeats without being
    a copy): a window over the two line hashes, a shuffle of three longs a row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    lines = staged.filter("reason IS DISTINCT FROM 'empty_row' AND raw_line IS NULL")
    first = sf.min(POSITION).over(Window.partitionBy("line_hash", "line_hash2"))
    return (
        lines.select(POSITION, first.alias("__first"))
        .filter(f"{POSITION} <> __first")
        .select(POSITION, sf.lit(True).alias("__dup"))
    )


Ordering = Callable[[Any], Any]


def _with_duplicates(staged: Any, later: Any) -> tuple[Any, Ordering]:
    """``staged`` with later copies marked ``duplicate_line``, and how to put rows in file
    order for writing.

    Usually few lines repeat: their positions are broadcast and the rows never move, so
    they stay in the scan's partitions, which are already in file order (no sort, no
    shuffle of whole rows). An export that repeats itself wholesale (more than
    ``_BROADCAST_COPIES`` copies) takes a shuffle join and a range sort on the position.
    """
    from pyspark.sql import functions as sf

    small = later.count() <= _BROADCAST_COPIES
    right = sf.broadcast(later) if small else later
    reason = sf.when(sf.col("__dup"), sf.lit("duplicate_line")).otherwise(sf.col("reason"))
    marked = staged.join(right, POSITION, "left").withColumn("reason", reason).drop("__dup")
    if small:
        return marked, lambda frame: frame
    return marked, lambda frame: frame.orderBy(POSITION)


def _accounting(staged: Any) -> tuple[int, dict[str, int], dict[int, int]]:
    """Rows in, rows per quarantine reason and each file's first position: one job."""
    from pyspark.sql import functions as sf

    groups = (
        staged.groupBy("file_index", "reason")
        .agg(sf.count(sf.lit(1)).alias("n"), sf.min(POSITION).alias("start"))
        .collect()
    )
    reasons: dict[str, int] = {}
    starts: dict[int, int] = {}
    for file_index, reason, n, start in groups:
        if reason:
            reasons[str(reason)] = reasons.get(str(reason), 0) + int(n)
        starts[int(file_index)] = min(int(start), starts.get(int(file_index), int(start)))
    return sum(int(row.n) for row in groups), reasons, starts


def _quarantined(spark: Any, rejected: Any, starts: dict[int, int]) -> Any:
    """Rejected rows (in file order), with their row number within their file (1 = first)."""
    from pyspark.sql import functions as sf

    offsets = spark.createDataFrame(
        sorted(starts.items()) or [(0, 0)], "file_index INT, __file_start LONG"
    )
    rejected = rejected.join(sf.broadcast(offsets), "file_index")
    rejected = rejected.withColumn("source_row", sf.col(POSITION) - sf.col("__file_start") + 1)
    return rejected.select(*QUARANTINE_COLUMNS)


def _report(spark: Any, rows_in: int, transactions: Path, quarantine: Path) -> IngestReport:
    """Counts from what was written, so the report cannot disagree with the files."""
    from pyspark.sql import functions as sf

    tx = (
        spark.read.parquet(str(transactions))
        .agg(sf.count(sf.lit(1)), sf.countDistinct("customer_id"), sf.min("ts"), sf.max("ts"))
        .first()
    )
    rows_out, customers, first_ts, last_ts = tx
    q = spark.read.parquet(str(quarantine)).groupBy("reason").count().collect()
    reasons = {str(r): int(n) for r, n in sorted(q)}
    log.info("ingest (spark): %s rows read, %s kept", f"{rows_in:,}", f"{rows_out:,}")
    return accounted_report(rows_in, rows_out, reasons, customers, first_ts, last_ts)
