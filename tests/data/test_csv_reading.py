"""One dialect per source, rejected lines numbered among their file's rows, staging either way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from churn.config import CsvOptions, IngestConfig
from churn.data import dialect, duplicates, rawfiles, staging
from churn.data.ingest import IngestResult, ingest
from churn.errors import UserError

HEADER = "Invoice,InvoiceDate,CustomerID,Amount"
LENIENT = IngestConfig(max_bad_fraction=1.0)


def _rows(n: int, start: int = 0) -> list[str]:
    return [
        f"{start + i},2024-01-{i % 28 + 1:02d} 10:00:00,{100 + start + i},{i + 1}.5"
        for i in range(n)
    ]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _sniffed(tmp_path: Path, lines: list[str], **options: object) -> dialect.Dialect:
    path = _write(tmp_path / "sniff.csv", lines)
    raw = rawfiles.inspect(path, "utf-8", tmp_path / "scratch")
    return dialect.sniff(duckdb.connect(), raw, CsvOptions.model_validate(options))


def test_a_broken_line_does_not_change_the_dialect(tmp_path: Path) -> None:
    lines = [HEADER, *_rows(30)]
    lines[2] += ",surplus"
    found = _sniffed(tmp_path, lines)
    assert (found.delimiter, found.quote, found.skip_rows) == (",", '"', 0)


def test_a_title_line_above_the_header_is_skipped(tmp_path: Path) -> None:
    found = _sniffed(tmp_path, ["Sales export", "", HEADER.replace(",", ";"), "1;2024-01-01;7;3"])
    assert (found.delimiter, found.skip_rows) == (";", 2)


def test_params_win_over_the_sniffer(tmp_path: Path) -> None:
    found = _sniffed(tmp_path, [HEADER, *_rows(5)], delimiter=";", quote="")
    assert (found.delimiter, found.quote, found.escape) == (";", "", "")


def test_header_names_follow_duckdb(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.csv", ['" a ",a,,"multi', 'line",b', "1,2,3,4,5"])
    raw = rawfiles.inspect(path, "utf-8", tmp_path / "scratch")
    found = dialect.sniff(duckdb.connect(), raw, CsvOptions(delimiter=",", quote='"'))
    record = dialect.first_record(raw, found)
    assert dialect.column_names(record, header=True) == ["a", "a_1", "column2", "multi\nline", "b"]
    assert dialect.column_names(record, header=False)[:2] == ["column0", "column1"]


def _run(source: Path, config: IngestConfig = LENIENT) -> IngestResult:
    return ingest(source, config, dt.date(2025, 1, 1))


def _malformed(result: IngestResult) -> list[tuple[str, int, str]]:
    q = result.quarantine
    q = q[q["reason"] == "malformed_line"]
    found = zip(q.source_file, q.source_row, q.raw_line, strict=True)
    return [(Path(f).name, int(r), t) for f, r, t in found]


def test_rows_around_rejected_lines_keep_their_numbers(tmp_path: Path) -> None:
    lines = [HEADER, *_rows(12)]
    lines[3] = lines[3].replace(",2024", ",not a date")  # row 3: a parse failure
    lines.insert(5, "x,y,z,w,v")  # row 5: rejected (one field too many)
    lines.insert(6, "only,three,fields")  # row 6: rejected
    lines[10] = lines[10].replace(",2024", ",garbage")  # row 10
    result = _run(_write(tmp_path / "a.csv", lines))
    assert result.report.rows_in == 14
    q = result.quarantine
    assert q[["source_row", "reason"]].values.tolist() == [
        [3, "unparseable_timestamp"],
        [5, "malformed_line"],
        [6, "malformed_line"],
        [10, "unparseable_timestamp"],
    ]


def test_a_run_on_quote_is_one_row_per_line(tmp_path: Path) -> None:
    lines = [HEADER, *_rows(6)]
    lines[2] = '1,"2024-01-02 10:00:00,101,2.5'  # the quote runs on into the next line
    lines[3] = '2,"2024-01-03 10:00:00",102,3.5'  # ... until that line's first quote
    lines[5] = lines[5].replace(",2024", ",soon")  # row 5, after the run-on record
    result = _run(_write(tmp_path / "a.csv", lines))
    assert _malformed(result) == [("a.csv", 2, lines[2]), ("a.csv", 3, lines[3])]
    assert result.quarantine["source_row"].tolist() == [2, 3, 5]
    assert result.report.rows_in == 6


def test_rejected_lines_in_files_with_different_headers(tmp_path: Path) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    _write(folder / "1.csv", [HEADER, *_rows(3), "a,b,c,d,e"])
    _write(folder / "2.csv", ["CustomerID,Amount,InvoiceDate", "7,1,2024-01-01", "7,1"])
    _write(folder / "3.csv", [HEADER, "a,b", *_rows(2, start=50)])
    result = _run(folder)
    assert _malformed(result) == [
        ("1.csv", 4, "a,b,c,d,e"),
        ("2.csv", 2, "7,1"),
        ("3.csv", 1, "a,b"),
    ]
    assert result.report.rows_in == 4 + 2 + 3


def test_invalid_encoding_past_the_head_stops_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rawfiles, "HEAD_BYTES", 64)
    path = tmp_path / "a.csv"
    path.write_bytes(
        ("\n".join([HEADER, *_rows(5)]) + "\n").encode() + b"9,2024-01-01,7,Espa\xf1a\n"
    )
    with pytest.raises(UserError, match=r"a\.csv line 7 is not valid utf-8 text"):
        _run(path)


def test_staging_in_parquet_gives_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [HEADER, *_rows(40), _rows(1)[0], "broken line"]
    lines[7] = lines[7].replace(",2024", ",later")
    source = _write(tmp_path / "a.csv", lines)
    in_memory = _run(source)
    monkeypatch.setattr(staging, "ROW_BYTES", 10**12)  # nothing fits: stage in Parquet
    on_disk = _run(source)
    assert on_disk.report == in_memory.report
    pd.testing.assert_frame_equal(on_disk.transactions, in_memory.transactions)
    pd.testing.assert_frame_equal(on_disk.quarantine, in_memory.quarantine)
    assert set(in_memory.report.reasons) == {
        "duplicate_line",
        "malformed_line",
        "unparseable_timestamp",
    }


def test_memory_limit_is_read_back_from_duckdb() -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    # DuckDB reports it rounded to a tenth of a GiB (1.8 GiB)
    assert staging.memory_limit_bytes(con) == pytest.approx(2e9, rel=0.05)


def test_duplicates_are_found_slice_by_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(300)
    lines = [HEADER, *rows, *rows[::7], *rows[::50]]
    source = _write(tmp_path / "a.csv", lines)
    whole = _run(source).quarantine
    monkeypatch.setattr(duplicates, "_HASHES_PER_SLICE", 40)  # 16 slices of the hash range
    sliced = _run(source).quarantine
    pd.testing.assert_frame_equal(sliced, whole)
    assert len(whole) == len(rows[::7]) + len(rows[::50])
    assert whole["source_row"].min() == 301
