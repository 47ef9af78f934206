"""The retention target list marketing loads into its CRM.

Column names are for a marketer, not a data scientist: what each column means
must be obvious without this code. Only customers who may be contacted end up
in the list; everyone left out is counted by reason in the export summary, so
a short list never looks like a silent bug.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from churn.cells import neutralise
from churn.errors import UserError
from churn.features.segments import SEGMENTS
from churn.schema import CONTACT_COLUMNS, EXPORT_HEADERS, MARKETING_CONSENT, subset
from churn.scoring import list_guide
from churn.scoring.budget_pick import Selection
from churn.scoring.targeting import NO_ACTION

BANDS = ("low", "medium", "high")
CONSENT_OK = "ok"
NO_CONSENT = "no_consent"
UNKNOWN_CONSENT = "unknown_consent"
NOT_IN_CUSTOMERS = "not_in_customers_table"
# The XLSX's created/modified properties and the time of every file inside it: fixed
# (the earliest a zip entry can hold), so the same list gives the same bytes. openpyxl
# stamps both with the clock, and the XLSX is a DVC output a fresh clone must reproduce.
XLSX_TIME = dt.datetime(1980, 1, 1)
# Contact details the customers table lacks: a table, or how to look them up for the
# listed customers' ids only (the nightly: the latest order's country of 460 customers,
# not of 3 M, issue 20).
Contacts = pd.DataFrame | Callable[[pd.Series], pd.DataFrame]

# The exported money columns: rounded to cents here, shown as money on the page.
MONEY_COLUMNS = subset(
    EXPORT_HEADERS,
    "expected_value_12m",
    "clv_discounted",
    "value_at_risk",
    "contact_cost",
    "expected_gain",
    "revenue",
)


@dataclass(frozen=True)
class ExportFilters:
    """Which selected customers go into this export; None means no filter."""

    segments: Sequence[str] | None = None
    bands: Sequence[str] | None = None
    min_value: float | None = None  # expected 12-month value at least this
    actions: Sequence[str] | None = None
    top_n: int | None = None
    # Fields whose values came from params.yaml `export:` rather than an option; only
    # for messages (`export.segments [...]` instead of `--segment ...`).
    from_params: frozenset[str] = frozenset()

    def check(self, known_actions: Sequence[str]) -> None:
        """Refuse a filter value that can only be a typo (it would silently export nothing)."""
        for option, values, known in (
            ("--segment", self.segments, SEGMENTS),
            ("--band", self.bands, BANDS),
            ("--action", self.actions, tuple(known_actions)),
        ):
            for value in values or ():
                if value not in known:
                    raise UserError(
                        f"{option} {value!r} is not one of: {', '.join(repr(k) for k in known)}"
                    )
        if self.min_value is not None and not np.isfinite(self.min_value):
            raise UserError("--min-value must be a finite number")
        if self.top_n is not None and self.top_n <= 0:
            raise UserError("--top must be a positive number of customers")


def consent_status(customer_ids: pd.Series, customers: pd.DataFrame | None) -> pd.Series:
    """ok / no_consent / unknown_consent / not_in_customers_table for each customer id.

    Without a customers table (none configured: ingest writes it empty) there is
    nothing to check and everyone is ``ok``; with one, only an explicit True
    consent is ``ok``.
    """
    if customers is None or customers.empty:
        return pd.Series(CONSENT_OK, index=customer_ids.index, dtype="object")
    consent = customers.drop_duplicates("customer_id").set_index("customer_id")[MARKETING_CONSENT]
    known = customer_ids.isin(consent.index)
    flag = customer_ids.map(consent)
    granted = flag.astype("boolean").fillna(False).to_numpy(dtype=bool)
    status = np.select(
        [~known.to_numpy(), flag.isna().to_numpy(), granted],
        [NOT_IN_CUSTOMERS, UNKNOWN_CONSENT, CONSENT_OK],
        NO_CONSENT,
    )
    return pd.Series(status, index=customer_ids.index, dtype="object")


# The filters in the order they apply, with the option that sets each.
_FILTERS = (
    ("segments", "--segment"),
    ("bands", "--band"),
    ("min_value", "--min-value"),
    ("actions", "--action"),
    ("top_n", "--top"),
)


def _apply_filter(frame: pd.DataFrame, field: str, value: Any) -> pd.DataFrame:
    if field == "segments":
        return frame[frame["segment"].isin(value)]
    if field == "bands":
        return frame[frame["risk_band"].isin(value)]
    if field == "min_value":
        return frame[frame["expected_value_12m"] >= value]
    if field == "actions":
        return frame[frame["action"].isin(value)]
    return frame.head(value)


def _filter_steps(
    frame: pd.DataFrame, filters: ExportFilters
) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(field, option, rows left) after each filter that is set, in the order they apply."""
    for field, option in _FILTERS:
        value = getattr(filters, field)
        if value is not None:
            frame = _apply_filter(frame, field, value)
            yield field, option, frame


def _apply_filters(frame: pd.DataFrame, filters: ExportFilters) -> pd.DataFrame:
    for _, _, rows in _filter_steps(frame, filters):
        frame = rows
    return frame


def _shown(filters: ExportFilters, field: str, option: str) -> str:
    """A filter as the user set it: `--segment 'At risk'`, or `export.segments ['At risk']`."""
    value = getattr(filters, field)
    if field == "min_value":
        value = f"{value:g}"
    if field in filters.from_params:
        listed = isinstance(value, Sequence) and not isinstance(value, str)
        return f"export.{field} {list(value) if listed else value}"
    if field in ("segments", "bands", "actions"):
        return " ".join(f"{option} {v!r}" for v in value)
    return f"{option} {value}"


def _selected(targets: pd.DataFrame, consent: pd.Series) -> pd.DataFrame:
    """The customers picked under the budget who may be contacted, best expected gain first."""
    contact_list = targets[targets["selected"] & (consent == CONSENT_OK)]
    return contact_list.sort_values(
        ["expected_gain", "risk_rank"], ascending=[False, True], kind="stable"
    )


def why_empty(
    targets: pd.DataFrame, consent: pd.Series, summary: dict[str, Any], filters: ExportFilters
) -> str:
    """Why the exported list came out empty, naming the step that emptied it.

    An empty CSV looks like a bug (or, worse, like "nobody to call"), so the
    export says whether the data, the rules, the budget, consent or one of the
    filters left nobody, e.g. "--segment 'At risk' left 0 of 412 selected customers".
    """
    if not summary["scored_customers"]:
        return "the score table holds no customers"
    if not summary["worth_contacting"]:
        return (
            f"none of the {summary['scored_customers']:,} scored customers is worth contacting"
            " (no action with a positive expected gain: see targeting.rules and .actions)"
        )
    if not summary["selected"]:
        if summary["targeted_under_budget"] == 0 and sum(summary["left_out"].values()):
            left_out = ", ".join(f"{k} {v:,}" for k, v in summary["left_out"].items() if v)
            return (
                f"none of the {summary['worth_contacting']:,} customers worth contacting"
                f" may be contacted ({left_out})"
            )
        if summary["targeted_under_budget"]:
            return (
                f"all {summary['targeted_under_budget']:,} targeted customers were held out"
                " as the control group (targeting.control_fraction)"
            )
        return "the budget picked nobody (targeting.max_contacts, targeting.max_budget)"
    before = _selected(targets, consent)
    kept: list[str] = []
    for field, option, rows in _filter_steps(before, filters):
        if rows.empty:
            shown = _shown(filters, field, option)
            after = f" (after {', '.join(kept)})" if kept else ""
            return f"{shown} left 0 of {len(before):,} selected customers{after}"
        kept.append(f"{_shown(filters, field, option)}: {len(rows):,}")
    return "no customer is left"  # not reached: an empty list has an emptying step


def _marketing_view(
    frame: pd.DataFrame, customers: pd.DataFrame | None, contacts: Contacts | None = None
) -> pd.DataFrame:
    """The list in marketing's words: contact details from the customers table, where it
    has none from ``contacts`` (e.g. the country of the latest order), rounded numbers."""
    out = frame.copy()
    if contacts is not None and not isinstance(contacts, pd.DataFrame):
        contacts = contacts(out["customer_id"])
    for source in (customers, contacts):
        if source is None or source.empty:
            continue
        # Only the listed customers' rows (their first one each), not the whole table's.
        listed = source[source["customer_id"].isin(out["customer_id"])]
        info = listed.drop_duplicates("customer_id").set_index("customer_id")
        for column in CONTACT_COLUMNS:
            if column not in info:
                continue
            found = out["customer_id"].map(info[column])
            out[column] = out[column].replace("", np.nan).fillna(found) if column in out else found
    for column in CONTACT_COLUMNS:
        out[column] = out[column].fillna("") if column in out else ""
    out["priority"] = np.arange(1, len(out) + 1)
    out["churn_probability"] = (100 * out["churn_probability"]).round(1)
    out["save_rate"] = (100 * out["save_rate"]).round(1)
    out["recency_days"] = out["recency_days"].round().astype("int64")
    for column in MONEY_COLUMNS:
        out[column] = out[column].round(2)
    # A calendar date (an XLSX date cell); empty where no next purchase is expected.
    when = pd.to_datetime(out["next_purchase_date"])
    out["next_purchase_date"] = pd.Series(when.dt.date, index=out.index).where(when.notna(), None)
    return out[list(EXPORT_HEADERS)].rename(columns=EXPORT_HEADERS).reset_index(drop=True)


def build_export(
    targets: pd.DataFrame,
    consent: pd.Series,
    customers: pd.DataFrame | None,
    filters: ExportFilters,
    pick: Selection | None = None,
    contacts: Contacts | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The contact list (selected customers, best expected gain first) and its summary.

    ``contacts`` fills contact columns the customers table leaves empty (the country of
    each customer's latest order, churn.data.countries).
    ``consent`` is ``consent_status`` aligned with ``targets``. Left-out counts
    are over customers worth contacting (positive expected gain with an action).
    ``pick`` is the budget pick behind ``targeted``: whether it is proven optimal and,
    if the time limit stopped it, how much gain any pick could at most add.
    """
    worth = (targets["expected_gain"] > 0) & (targets["action"] != NO_ACTION)
    contact_list = _selected(targets, consent)
    exported = _apply_filters(contact_list, filters)
    summary: dict[str, Any] = {
        "as_of": str(pd.Timestamp(targets["as_of"].iloc[0]).date()) if len(targets) else None,
        "scored_customers": len(targets),
        "worth_contacting": int(worth.sum()),
        "left_out": {
            NO_CONSENT: int((worth & (consent == NO_CONSENT)).sum()),
            UNKNOWN_CONSENT: int((worth & (consent == UNKNOWN_CONSENT)).sum()),
            NOT_IN_CUSTOMERS: int((worth & (consent == NOT_IN_CUSTOMERS)).sum()),
        },
        "targeted_under_budget": int(targets["targeted"].sum()),
        "budget_pick": pick.summary() if pick is not None else None,
        "control_group_held_out": int((targets["targeted"] & targets["control_group"]).sum()),
        "selected": len(contact_list),
        "removed_by_filters": int(len(contact_list) - len(exported)),
        "exported": len(exported),
        "exported_cost": round(float(exported["contact_cost"].sum()), 2),
        "exported_expected_gain": round(float(exported["expected_gain"].sum()), 2),
        "exported_by_action": {
            str(k): int(v) for k, v in exported["action"].value_counts().items()
        },
        "filters": {
            "segments": list(filters.segments) if filters.segments is not None else None,
            "bands": list(filters.bands) if filters.bands is not None else None,
            "min_value": filters.min_value,
            "actions": list(filters.actions) if filters.actions is not None else None,
            "top_n": filters.top_n,
        },
    }
    return _marketing_view(exported, customers, contacts), summary


def write_xlsx(
    frame: pd.DataFrame,
    target: Path,
    sheet: str = "Retention list",
    currency: str = "£",
    horizon_days: int = 90,
) -> None:
    """The list on one sheet, ready to use, and a "How to read this list" sheet.

    Takes any frame of list rows (headers as in ``EXPORT_HEADERS``; a filtered cut or a
    page's download alike): money in ``currency`` (report.currency), risk and save rate
    as percentages, counts and dates formatted by column (churn.scoring.list_guide),
    a bold frozen header with an autofilter, readable widths. Other columns are written
    as they are. Every text cell is neutralised (:func:`churn.cells.neutralise`, as in
    the CSV) and stored as a string: openpyxl would otherwise turn any text starting with
    ``=`` into a live formula. Characters XML cannot hold (control characters other than
    tab, LF and CR) become U+FFFD instead of failing the export; the CSV keeps them.
    """
    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append([_text(str(c)) for c in frame.columns])
    for row in frame.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    _format_columns(ws, [str(c) for c in frame.columns], currency)
    for cells in ws.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, whatever it looks like
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    last = get_column_letter(max(frame.shape[1], 1))
    ws.auto_filter.ref = f"A1:{last}{len(frame) + 1}"
    for i, column in enumerate(frame.columns, start=1):
        longest = max([len(str(column)), *(len(str(v)) for v in frame[column].head(200))])
        ws.column_dimensions[get_column_letter(i)].width = min(60, longest + 4)
    _guide_sheet(book, [str(c) for c in frame.columns], currency, horizon_days)
    book.properties.created = book.properties.modified = XLSX_TIME
    # Zipped in memory, written in one call: on a full disk zipfile fails inside its own
    # close and again in __del__, which prints a second traceback past the one-line error.
    # ExcelWriter, not book.save: that sets `modified` to now.
    buffer = io.BytesIO()
    ExcelWriter(book, _FixedTimeZip(buffer, "w", ZIP_DEFLATED, allowZip64=True)).save()
    target.write_bytes(buffer.getvalue())


def _format_columns(ws: Any, headers: list[str], currency: str) -> None:
    """Number formats by column; percent columns hold 66.4 in the frame, 0.664 in Excel."""
    names = list_guide.by_header()
    for i, header in enumerate(headers, start=1):
        column = names.get(header, "")
        fmt = list_guide.number_format(column, currency)
        if fmt is None:
            continue
        percent = list_guide.is_percent(column)
        for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
            if percent and isinstance(cell.value, int | float):
                cell.value = round(cell.value / 100, 6)
            cell.number_format = fmt


def _guide_sheet(book: Workbook, headers: list[str], currency: str, horizon_days: int) -> None:
    """The "How to read this list" sheet: the order, the one risk number, each column."""
    guide = book.create_sheet(list_guide.READING[0])
    for left, right in list_guide.guide_rows(headers, currency, horizon_days):
        guide.append([_text(left), _text(right)])
    for cells in guide.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    guide["A1"].font = Font(bold=True, size=13)
    for row in guide.iter_rows():
        if row[0].value == "Column":
            for cell in row:
                cell.font = Font(bold=True)
    guide.column_dimensions["A"].width = 34
    guide.column_dimensions["B"].width = 100


class _FixedTimeZip(ZipFile):
    """A zip whose entries are dated :data:`XLSX_TIME` (ZipFile dates them now, or by the
    mtime of the temporary file openpyxl writes a worksheet to)."""

    def write(  # type: ignore[override]
        self,
        filename: str | Path,
        arcname: str | None = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        data = Path(filename).read_bytes()
        self.writestr(arcname or Path(filename).name, data, compress_type, compresslevel)

    def writestr(  # type: ignore[override]
        self,
        zinfo_or_arcname: str | ZipInfo,
        data: bytes | str,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        if not isinstance(zinfo_or_arcname, ZipInfo):
            entry = ZipInfo(zinfo_or_arcname, date_time=XLSX_TIME.timetuple()[:6])
            entry.compress_type = self.compression
            entry.external_attr = 0o600 << 16  # what ZipFile gives a file entry
            zinfo_or_arcname = entry
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)


def _cell(value: Any) -> Any:
    """A value as openpyxl should write it: NaN empty, numpy scalars as Python, text safe."""
    if isinstance(value, float) and np.isnan(value):
        return None
    value = value.item() if isinstance(value, np.generic) else value
    return _text(value) if isinstance(value, str) else value


def _text(value: str) -> str:
    return neutralise(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
