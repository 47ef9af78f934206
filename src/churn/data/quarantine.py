"""Why a row is set aside, and when the share of broken rows stops the stage.

The first rule that matches names the row's reason, so every quarantined row has
exactly one. Reasons come in two kinds: *malformed* rows mean the export is
broken and count towards ``ingest.max_bad_fraction``; *policy* rows are fine data
we choose not to model (guest orders, rows after a replayed as-of date, dropped
cancellations) and are reported but never held against the export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from churn.data.sources import quote_ident, quote_literal
from churn.errors import UserError

MALFORMED_REASONS = (
    "malformed_line",  # a line the CSV reader could not split into the header's columns
    "duplicate_line",
    "unparseable_timestamp",
    "implausible_timestamp",
    "non_numeric_amount",
    "absurd_amount",
)
# after_as_of is policy: replaying a past as-of date (DESIGN.md) sets later rows aside
# on purpose, and must not fail the stage just because most of the history is later.
POLICY_REASONS = ("empty_row", "after_as_of", "guest_order", "zero_amount", "cancellation")


# The longest history the features can take: they sum squared gaps between purchases
# in seconds as 64-bit integers, which holds while a customer's whole span (the upper
# bound of the sum of their squared gaps) stays under 2**31.5 s, about 96 years.
MAX_SPAN = dt.timedelta(days=35_000)


@dataclass(frozen=True)
class PlausibleWindow:
    """Timestamps a purchase can have: ``earliest <= ts < before``.

    Outside it a date is a placeholder or a typo (0001-01-01, 1900-01-01, 9999-12-31),
    and letting it through made ``features`` overflow on every run until someone
    edited the feed. The upper edge follows the later of ``as_of`` and today: a
    replayed past as-of date still sees the later rows as ``after_as_of`` (policy),
    not as broken ones.
    """

    earliest: dt.date
    before: dt.date

    @classmethod
    def around(
        cls, earliest: dt.date, future_days: int, as_of: dt.date | None, today: dt.date
    ) -> PlausibleWindow:
        reference = max(as_of or today, today)
        try:
            before = reference + dt.timedelta(days=future_days)
        except OverflowError:  # an as_of near 9999-12-31
            before = dt.date.max
        if before - earliest > MAX_SPAN:
            raise UserError(
                f"plausible timestamps from {earliest} to before {before} span more than"
                f" {MAX_SPAN.days:,} days, longer than the features can measure; set"
                f" ingest.plausible_from to {before - MAX_SPAN} or later (or check the"
                " as-of date)"
            )
        return cls(earliest, before)


@dataclass(frozen=True)
class Rules:
    """The knobs the rules need, already resolved from params and the data."""

    max_amount: float
    as_of: dt.date | None
    drop_cancellations: bool
    plausible: PlausibleWindow


def is_cancellation(order_id: str | None, quantity: str | None, amount: str, prefix: str) -> str:
    """A cancellation invoice (``C536379``), a negative quantity or a negative amount."""
    tests = [f"{amount} < 0"]
    if quantity is not None:
        tests.append(f"{quantity} < 0")
    if order_id is not None and prefix:
        tests.append(f"starts_with({order_id}, {quote_literal(prefix)})")
    return "coalesce(" + " OR ".join(tests) + ", false)"


def reason(source_columns: Sequence[str], parsed: Mapping[str, str], rules: Rules) -> str:
    """A SQL CASE naming the first rule a row breaks, NULL for a clean row.

    ``parsed`` holds the SQL of the parsed ``customer_id``, ``ts``, ``amount`` and
    ``cancelled`` values. Duplicate lines are found after staging
    (``churn.data.duplicates``) and override every reason here but ``empty_row``.
    """
    cells = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in source_columns)
    blank = f"coalesce({cells}) IS NULL"
    ts, amount = parsed["ts"], parsed["amount"]
    after = (
        f"WHEN {ts} >= TIMESTAMP {quote_literal(rules.as_of.isoformat())} THEN 'after_as_of'"
        if rules.as_of
        else ""
    )
    cancel = f"WHEN {parsed['cancelled']} THEN 'cancellation'" if rules.drop_cancellations else ""
    earliest = quote_literal(rules.plausible.earliest.isoformat())
    before = quote_literal(rules.plausible.before.isoformat())
    return f"""CASE
        WHEN {blank} THEN 'empty_row'
        WHEN {ts} IS NULL OR NOT isfinite({ts}) THEN 'unparseable_timestamp'
        WHEN {ts} < TIMESTAMP {earliest} OR {ts} >= TIMESTAMP {before}
            THEN 'implausible_timestamp'
        WHEN {amount} IS NULL OR NOT isfinite({amount}) THEN 'non_numeric_amount'
        WHEN abs({amount}) > {float(rules.max_amount)!r} THEN 'absurd_amount'
        {after}
        WHEN {parsed["customer_id"]} IS NULL THEN 'guest_order'
        WHEN {amount} = 0 THEN 'zero_amount'
        {cancel}
        ELSE NULL END"""


def malformed_count(reasons: Mapping[str, int]) -> int:
    return sum(reasons.get(r, 0) for r in MALFORMED_REASONS)


def check_bad_fraction(reasons: Mapping[str, int], rows_in: int, max_bad_fraction: float) -> None:
    """Stop before anything is written when the export looks broken."""
    bad = malformed_count(reasons)
    if not rows_in or bad / rows_in <= max_bad_fraction:
        return
    detail = ", ".join(f"{r} {reasons[r]}" for r in MALFORMED_REASONS if reasons.get(r))
    hint = ""
    if reasons.get("unparseable_timestamp", 0) * 2 >= bad:
        hint = " (set ingest.timestamp_format or ingest.dayfirst if the dates are readable)"
    elif reasons.get("implausible_timestamp", 0) * 2 >= bad:
        hint = (
            " (dates outside the plausible window; lower ingest.plausible_from if the"
            " history really is that old)"
        )
    elif reasons.get("non_numeric_amount", 0) * 2 >= bad:
        hint = " (set ingest.decimal_separator or ingest.columns.amount if amounts are readable)"
    elif reasons.get("malformed_line", 0) * 2 >= bad:
        hint = " (see raw_line in the quarantine; set ingest.csv.delimiter or quote if it is wrong)"
    raise UserError(
        f"{bad:,} of {rows_in:,} rows ({bad / rows_in:.1%}) are malformed ({detail}), above"
        f" ingest.max_bad_fraction={max_bad_fraction}{hint}; nothing was written"
    )
