"""A raw file's bytes are checked before DuckDB reads them: empty, encoding, line endings."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from churn.data import rawfiles
from churn.errors import UserError

TEXT = "Invoice,InvoiceDate,CustomerID,Amount,Country\n1,2024-01-05,7,3.50,España\n"


def _file(tmp_path: Path, data: bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n"])
def test_empty_and_blank_files_are_named(tmp_path: Path, data: bytes) -> None:
    path = _file(tmp_path, data)
    with pytest.raises(UserError, match=r"^file is empty: .*export\.csv"):
        rawfiles.inspect(path, "utf-8", tmp_path / "scratch")


def test_empty_gzip_is_empty(tmp_path: Path) -> None:
    path = _file(tmp_path, gzip.compress(b""), "export.csv.gz")
    with pytest.raises(UserError, match="file is empty"):
        rawfiles.inspect(path, "utf-8", tmp_path / "scratch")


def test_stray_nul_byte_is_data_but_utf16_is_not_utf8(tmp_path: Path) -> None:
    stray = _file(tmp_path, TEXT.replace("España", "Esp\x00a").encode())
    assert rawfiles.inspect(stray, "utf-8", tmp_path / "scratch").head.startswith("Invoice")
    wide = _file(tmp_path, TEXT.encode("utf-16-le"), "wide.csv")  # no byte order mark
    with pytest.raises(UserError, match="mostly NUL bytes"):
        rawfiles.inspect(wide, "utf-8", tmp_path / "scratch")
    assert rawfiles.inspect(wide, "utf-16", tmp_path / "scratch").head == TEXT


def test_utf8_bom_read_as_latin1(tmp_path: Path) -> None:
    path = _file(tmp_path, TEXT.encode("utf-8-sig"))
    with pytest.raises(UserError, match="UTF-8 byte order mark but is read as latin-1"):
        rawfiles.inspect(path, "latin-1", tmp_path / "scratch")
    assert rawfiles.inspect(path, "utf-8", tmp_path / "scratch").head == TEXT  # BOM dropped


def test_ascii_file_reads_in_any_single_byte_encoding(tmp_path: Path) -> None:
    path = _file(tmp_path, TEXT.replace("España", "Spain").encode())
    assert rawfiles.inspect(path, "latin-1", tmp_path / "scratch").read_path == path


def test_undecodable_byte_names_its_line(tmp_path: Path) -> None:
    path = _file(tmp_path, TEXT.encode("latin-1"))
    with pytest.raises(UserError, match=r"byte 0xf1 on line 2"):
        rawfiles.inspect(path, "utf-8", tmp_path / "scratch")


@pytest.mark.parametrize(
    ("data", "mixed"),
    [
        (b"a,b\n1,2\n3,4\n", False),
        (b"a,b\r\n1,2\r\n3,4\r\n", False),
        (b"a,b\r\n1,2\n3,4\r\n", True),
        (b"a,b\n1,2\n3,4\r\n", True),
        (b'a,b\r\n1,"x\ny"\r\n', True),  # an LF inside quotes: the copy reads the same
    ],
)
def test_mixed_line_endings_are_read_from_an_lf_copy(
    tmp_path: Path, data: bytes, mixed: bool
) -> None:
    path = _file(tmp_path, data)
    raw = rawfiles.inspect(path, "utf-8", tmp_path / "scratch")
    assert (raw.read_path != path) == mixed
    assert raw.path == path
    if mixed:
        assert raw.read_path.read_bytes() == data.replace(b"\r\n", b"\n")


def test_line_endings_are_checked_past_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rawfiles, "HEAD_BYTES", 16)
    monkeypatch.setattr(rawfiles, "_CHUNK", 7)  # a CRLF split across two chunks
    lf_then_crlf = b"a,b\n1,2\n3,4\n5,6\n7,8\n9,10\r\n11,12\r\n"
    raw = rawfiles.inspect(_file(tmp_path, lf_then_crlf), "utf-8", tmp_path / "scratch")
    assert raw.read_path.read_bytes() == lf_then_crlf.replace(b"\r\n", b"\n")
    crlf_then_lf = b"a,b\r\n1,2\r\n3,4\r\n5,6\r\n7,8\n"
    raw = rawfiles.inspect(_file(tmp_path, crlf_then_lf, "b.csv"), "utf-8", tmp_path / "s")
    assert raw.read_path.read_bytes() == crlf_then_lf.replace(b"\r\n", b"\n")
    clean = b"a,b\r\n1,2\r\n3,4\r\n5,6\r\n7,8\r\n"
    raw = rawfiles.inspect(_file(tmp_path, clean, "c.csv"), "utf-8", tmp_path / "s")
    assert raw.read_path == tmp_path / "c.csv"


def test_rows_are_estimated_from_the_head(tmp_path: Path) -> None:
    body = "".join(f"{i},2024-01-05,7,3.50,UK\n" for i in range(10_000))
    path = _file(tmp_path, (TEXT.splitlines()[0] + "\n" + body).encode())
    estimate = rawfiles.inspect(path, "utf-8", tmp_path / "scratch").rows_estimate
    assert 9_000 < estimate < 11_000
    packed = _file(tmp_path, gzip.compress(path.read_bytes()), "export.csv.gz")
    assert rawfiles.inspect(packed, "utf-8", tmp_path / "scratch").rows_estimate == estimate
