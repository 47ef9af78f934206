"""Where raw rows come from on Spark: files, a Parquet/Delta folder, or a catalog table.

With ``engine: pyspark`` ``paths.raw_transactions`` may be what the DuckDB ingest
reads (one CSV/Parquet file, a glob, a folder of daily files) or what a
lakehouse holds: a Parquet or Delta folder as Spark writes it (``_SUCCESS``,
``_delta_log``, ``key=value`` partition folders) or a table in Spark's catalog
(``sales.transactions``; used when no file of that name exists). Every source
becomes the same DataFrame: the original columns as text (so a bad cell is one
quarantined row, as in :mod:`churn.data.sources`), ``__file`` (where a row came
from), ``__fidx`` (its file's index) and ``__pos`` (its position in the files read
one after another), computed on the executors without a single-partition window.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.config import CsvOptions
from churn.data.sources import resolve_sources
from churn.data.spark_rows import numbered
from churn.errors import UserError

FILE = "__file"
FILE_INDEX = "__fidx"
POSITION = "__pos"
CORRUPT = "__raw_line"  # the text of a line the CSV reader could not split
_KEY = "paths.raw_transactions"


@dataclass(frozen=True)
class SparkSource:
    """The rows as text with their file and position, and the original column names."""

    frame: Any  # pyspark.sql.DataFrame
    columns: list[str]
    files: list[str]
    kind: str  # csv, parquet, dataset or table
    rows: Any  # the same rows before numbering: a look at the first rows needs no position


def _is_dataset(path: Path) -> bool:
    """A folder Spark (or a lakehouse) wrote as one table, not a folder of exports."""
    if not path.is_dir():
        return False
    return any(
        (path / marker).exists() for marker in ("_SUCCESS", "_delta_log", "_common_metadata")
    ) or any(p.is_dir() and "=" in p.name for p in path.iterdir())


def open_spark_source(spark: Any, source: Path, options: CsvOptions) -> SparkSource:
    """The raw rows of ``source`` (see the module doc), every column as text."""
    if _is_dataset(source):
        delta = (source / "_delta_log").exists()
        frame = _read_dataset(spark, source, delta)
        return _positioned(_as_text(frame, str(source), 0), [str(source)], "dataset")
    if (
        not source.exists()
        and not any(ch in str(source) for ch in "*?[")
        and _is_table(spark, str(source))
    ):
        frame = _as_text(spark.table(str(source)), str(source), 0)
        return _positioned(frame, [str(source)], "table")
    files = resolve_sources(source, _KEY)
    suffixes = {p.suffix.lower() for p in files}
    if suffixes <= {".parquet", ".pq"}:
        frames = [
            _as_text(spark.read.parquet(str(p.resolve())), str(p), i) for i, p in enumerate(files)
        ]
        return _positioned(_union(frames), [str(p) for p in files], "parquet")
    if suffixes <= {".csv", ".tsv", ".txt", ".gz"}:
        return _positioned(*_read_csv(spark, files, options), "csv")
    raise UserError(
        f"unsupported source files {', '.join(sorted(suffixes))} with engine: pyspark:"
        f" use .csv (.csv.gz) or .parquet, one format per folder (set {_KEY})"
    )


def _is_table(spark: Any, name: str) -> bool:
    try:
        return bool(spark.catalog.tableExists(name))
    except Exception:  # a name Spark cannot parse as a table is simply not one
        return False


def _read_dataset(spark: Any, folder: Path, delta: bool) -> Any:
    if not delta:
        return spark.read.parquet(str(folder.resolve()))
    try:
        return spark.read.format("delta").load(str(folder.resolve()))
    except Exception as exc:
        raise UserError(
            f"{folder} is a Delta table, but this Spark session cannot read Delta"
            " (add the delta-spark package to the cluster's session)"
        ) from exc


def _as_text(frame: Any, where: str, index: int) -> Any:
    """Every source column cast to text, plus where the rows came from."""
    from pyspark.sql import functions as sf

    cells = [sf.col(f"`{c}`").cast("string").alias(c) for c in frame.columns]
    return frame.select(
        sf.lit(where).alias(FILE), sf.lit(index).cast("int").alias(FILE_INDEX), *cells
    )


def _union(frames: list[Any]) -> Any:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def _delimiter(path: Path, options: CsvOptions) -> str:
    """``ingest.csv.delimiter``, else sniffed from the first lines of the first file."""
    if options.delimiter:
        return options.delimiter
    with path.open(encoding=options.encoding, errors="replace", newline="") as handle:
        head = handle.read(65_536)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_csv(spark: Any, files: list[Path], options: CsvOptions) -> tuple[Any, list[str]]:
    """Each file read as text in its own scan (so file order is kept), then stacked."""
    from pyspark.sql.types import StringType, StructField, StructType

    if options.skip_rows:
        raise UserError(
            "ingest.csv.skip_rows is not supported with engine: pyspark"
            " (remove the lines before the header, or use engine: duckdb)"
        )
    reader = spark.read.options(
        sep=_delimiter(files[0], options),
        quote=options.quote or '"',
        escape=options.quote or '"',
        encoding=options.encoding,
        header=str(options.header).lower(),
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT,
        enforceSchema="true",
    )
    names = _header(reader, files[0], options.header)
    schema = StructType([StructField(n, StringType()) for n in [*names, CORRUPT]])
    frames = [
        _as_text(reader.schema(schema).csv(str(p.resolve())), str(p), i)
        for i, p in enumerate(files)
    ]
    return _union(frames), [str(p) for p in files]


def _header(reader: Any, first: Path, header: bool) -> list[str]:
    columns = list(reader.csv(str(first.resolve())).columns)
    if not columns:
        raise UserError(f"{first}: no columns found; check the export")
    return columns if header else [f"column{i}" for i in range(len(columns))]


def _positioned(frame: Any, files: list[str], kind: str) -> SparkSource:
    """``frame`` with ``__pos``, its rows' position in the files read one after another."""
    columns = [c for c in frame.columns if c not in (FILE, FILE_INDEX, CORRUPT)]
    return SparkSource(numbered(frame, POSITION, reproducible=True), columns, files, kind, frame)
