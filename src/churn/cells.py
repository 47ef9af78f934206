"""Text cells that are safe to open in a spreadsheet (CSV and formula injection).

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula, and a leading tab or carriage return can hide one,
so a customer named ``=HYPERLINK("http://x", "click")`` in a CRM export would
put a live link (or, with DDE, a command) in front of the marketer who opens the
list. Following the OWASP guidance on CSV injection, every text cell the
product writes for people (CSV and XLSX) goes through :func:`neutralise`: one
single quote is put in front of a text that starts with one of those characters.

The quote is also put in front of a text that already starts with a quote, so
the rule can be undone without loss (:func:`restore`): a CRM loader gets a
customer id back exactly by stripping one leading ``'`` when the character after
it is one of ``= + - @ '``, tab or CR. Numbers are never touched: a negative
amount is a number, not text, and stays one.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

QUOTE = "'"
# What a spreadsheet reads as the start of a formula (OWASP: = + - @ tab CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What gets the quote: a formula start, or a quote (so that restore() is exact).
_GUARDED = (*FORMULA_STARTS, QUOTE)


def neutralise(value: Any) -> Any:
    """``value`` with one ``'`` in front if it is text a spreadsheet could run; else as is."""
    if isinstance(value, str) and value.startswith(_GUARDED):
        return QUOTE + value
    return value


def restore(text: str) -> str:
    """The original text of a neutralised cell (what a CRM loader does to the id column)."""
    if len(text) > 1 and text[0] == QUOTE and text[1] in _GUARDED:
        return text[1:]
    return text


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and column name passed through :func:`neutralise`.

    Only columns that can hold text are looked at (object, string, category);
    numeric, boolean and date columns are returned unchanged.
    """
    out = frame.copy()
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if isinstance(series.dtype, pd.CategoricalDtype):
            cats = series.cat.categories
            out.isetitem(
                position, series.cat.rename_categories([neutralise(c) for c in cats]).array
            )
        elif series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            out.isetitem(position, series.map(neutralise).array)
    out.columns = [neutralise(c) for c in frame.columns]
    return out
