"""What a raw file's bytes say before any parser sees them.

DuckDB's CSV reader fails badly on a few things that are cheap to see in the bytes:
an empty file reads as one column named ``column0``; a file in another encoding
fails on its first odd byte, or (latin-1 chosen for a UTF-8 file) silently turns
``España`` into ``EspaÃ±a``; and a file whose lines end partly in CRLF and partly in
LF stops the strict reader with "state machine reached an invalid state", while
setting ``new_line`` explicitly makes it return no rows at all. So each file is
checked here first, and a file with mixed line endings is rewritten with LF
endings into the scratch folder; the reader then reads that copy.
"""

from __future__ import annotations

import codecs
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from churn.errors import UserError

HEAD_BYTES = 1 << 20  # enough for the header, the sniffer's start and the encoding check
_CHUNK = 1 << 23
_NUL_SHARE = 8  # one byte in 8 is NUL: UTF-16 (where ASCII text makes it one in 2)
_BOMS = {
    codecs.BOM_UTF8: "utf-8",
    codecs.BOM_UTF16_LE: "utf-16",
    codecs.BOM_UTF16_BE: "utf-16",
}


@dataclass(frozen=True)
class RawFile:
    """One source file as the reader will see it."""

    path: Path  # as the user named it: what the quarantine and the messages show
    read_path: Path  # what the reader opens (a copy with LF endings, or the file itself)
    head: str  # the start of the file, decoded (BOM removed)
    rows_estimate: int  # its size over the head's bytes per line


def _open(path: Path) -> BinaryIO:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read_head(path: Path) -> bytes:
    try:
        with _open(path) as stream:
            return stream.read(HEAD_BYTES)
    except (OSError, EOFError) as exc:  # a truncated or non-gzip .gz, a vanished file
        raise UserError(f"cannot read {path}: {exc}") from exc


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(path: Path, head: bytes, encoding: str) -> str:
    """The head as text, or a UserError naming the encoding the bytes point to."""
    bom = next((name for bom, name in _BOMS.items() if head.startswith(bom)), None)
    key = "set ingest.csv.encoding"
    if bom is not None and bom != encoding:
        raise UserError(
            f"{path} starts with a {bom.upper()} byte order mark but is read as {encoding}:"
            f" {key}: {bom}"
        )
    # In UTF-16 every ASCII character carries a NUL byte; a stray NUL in a cell is data.
    wide = head.count(0) * _NUL_SHARE > len(head)
    if encoding == "utf-16" and bom is None and not wide:
        raise UserError(f"{path} is not UTF-16 (no byte order mark, few NUL bytes): {key}")
    if encoding != "utf-16" and wide:
        raise UserError(
            f"{path} is mostly NUL bytes, so it is UTF-16 or not text at all:"
            f" {key}: utf-16 if it is a UTF-16 export"
        )
    if encoding == "latin-1" and bom is None and _is_utf8_text(head):
        raise UserError(f"{path} is UTF-8 (read as latin-1, 'é' would become 'Ã©'): {key}: utf-8")
    # Without a byte order mark DuckDB reads UTF-16 as little-endian, and so does this.
    utf16 = "utf-16" if bom else "utf-16-le"
    codec = {"utf-8": "utf-8-sig", "utf-16": utf16, "latin-1": "latin-1"}[encoding]
    try:
        return codecs.getincrementaldecoder(codec)().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path} is not {encoding}: byte 0x{head[exc.start]:02x} on line"
            f" {_line_of(head, exc.start)} cannot be decoded; {key} (latin-1 or utf-16?)"
        ) from exc


def _is_utf8_text(head: bytes) -> bool:
    """Valid UTF-8 with at least one multi-byte character: latin-1 text almost never is."""
    if head.isascii():
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _chunks(path: Path) -> Iterator[bytes]:
    with _open(path) as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def _mixed_line_endings(path: Path, head: bytes) -> bool:
    """True when some lines end in CRLF and others in LF (a CR inside quotes counts too).

    Most files never hold a CR, which ``bytes.find`` (memchr) rules out at memory speed;
    a CRLF file is checked by counting CR and LF bytes (numpy), which match in a clean
    one. A compressed file is judged by its head alone (decompressing it twice would
    cost more than the read); if it mixes further on, the reader says so in one line.
    """
    if b"\r" not in head:
        if len(head) < HEAD_BYTES or path.suffix.lower() == ".gz":
            return False
        return any(b"\r" in chunk for chunk in _chunks(path))
    if path.suffix.lower() == ".gz" or len(head) < HEAD_BYTES:
        return head.count(b"\r") != head.count(b"\n")
    cr = lf = 0
    for chunk in _chunks(path):
        array = np.frombuffer(chunk, np.uint8)
        cr += int(np.count_nonzero(array == 13))
        lf += int(np.count_nonzero(array == 10))
    return cr != lf


def _with_lf_endings(path: Path, target: Path) -> None:
    """Copy ``path`` (decompressed) to ``target`` with every CRLF turned into LF."""
    with target.open("wb") as out:
        carry = b""
        for chunk in _chunks(path):
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") else b""  # its LF may open the next chunk
            out.write(data[: len(data) - len(carry)].replace(b"\r\n", b"\n"))
        out.write(carry)


def inspect(path: Path, encoding: str, scratch: Path) -> RawFile:
    """Check one CSV file's bytes; a file with mixed line endings gets an LF copy in scratch."""
    head = _read_head(path)
    bom = next((b for b in _BOMS if head.startswith(b)), b"")
    if not head[len(bom) :].strip(b" \t\r\n\x00"):
        size = "0 bytes" if not head else "nothing but blank space"
        raise UserError(f"file is empty: {path} ({size}); remove it or export it again")
    text = _decode(path, head, encoding)
    rows = _size(path, head) * max(1, head.count(b"\n")) // len(head)
    # UTF-16 line ends are two-byte units; only ASCII-based encodings are rewritten here.
    if encoding == "utf-16" or not _mixed_line_endings(path, head):
        return RawFile(path, path, text, rows)
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / f"{len(list(scratch.iterdir()))}-{path.name.removesuffix('.gz')}"
    _with_lf_endings(path, copy)
    return RawFile(path, copy, text.replace("\r\n", "\n"), rows)


def _size(path: Path, head: bytes) -> int:
    """The file's size once decompressed (gzip keeps it, modulo 4 GiB, in its last bytes)."""
    size = path.stat().st_size
    if path.suffix.lower() != ".gz":
        return size
    with path.open("rb") as stream:
        stream.seek(-4, 2)
        stored = int.from_bytes(stream.read(4), "little")
    return max(stored, len(head), size * 4 if stored < size else 0)


def check_not_empty(path: Path) -> None:
    """A 0-byte Parquet or Excel file is a failed export, not a format problem."""
    if path.stat().st_size == 0:
        raise UserError(f"file is empty: {path} (0 bytes); remove it or export it again")
