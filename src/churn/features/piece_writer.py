"""Append snapshot pieces to one Parquet file while the next piece is being computed.

Encoding and compressing a cutoff's ~50 columns is single-threaded work in
Arrow that releases the GIL, so it can overlap the next cutoff's queries and
BTYD fits instead of following them. At most one piece waits to be written,
so memory holds two pieces at worst, never the stacked table.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Dictionary pages pay off for repetitive text (split, segment, country), not for
# ids or measures: trying them on every column cost a quarter of the write time.
_NO_DICTIONARY = ("customer_id",)


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name
        for f in schema
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        and f.name not in _NO_DICTIONARY
    ]


class PieceWriter:
    """``with PieceWriter(path) as w: w.write(piece)``; the first piece fixes the schema.

    A write error surfaces at the next ``write`` or at exit; nothing is
    swallowed. ``rows`` counts what was handed over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._pending: Future[None] | None = None

    def write(self, piece: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(piece, preserve_index=False)
        self._wait()
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.path, table.schema, use_dictionary=_dictionary_columns(table.schema)
            )
        writer = self._writer
        self._pending = self._pool.submit(lambda: writer.write_table(table.cast(writer.schema)))
        self.rows += len(piece)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    @property
    def started(self) -> bool:
        return self._writer is not None

    def __enter__(self) -> PieceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the caller's error wins
        finally:
            self._pool.shutdown(wait=True)
            if self._writer is not None:
                self._writer.close()
