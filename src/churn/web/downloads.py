"""Downloads of exactly the rows on the page, through the export's own safe writers.

`churn export` writes with :func:`churn.atomic.write_csv` and
:func:`churn.scoring.export.write_xlsx` (no formula or markup from data survives
either); the page writes the same frame with the same functions into a private
temporary folder and sends the bytes, so a download equals a `churn export`
file with the same filters.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from churn.atomic import write_csv
from churn.scoring.export import write_xlsx

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def list_bytes(rows: pd.DataFrame, fmt: str) -> bytes:
    """The list as a CSV or XLSX file's bytes."""
    with tempfile.TemporaryDirectory(prefix="churn-serve-") as folder:
        target = Path(folder) / f"list.{fmt}"
        if fmt == "csv":
            write_csv(rows, target)
        else:
            write_xlsx(rows, target)
        return target.read_bytes()
