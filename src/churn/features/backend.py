"""The execution engine behind the Ibis expressions (DESIGN.md, Engines)."""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from churn.errors import UserError


def connect(engine: str) -> BaseBackend:
    """An embedded engine; DuckDB spills to disk, so data larger than RAM still runs."""
    if engine == "duckdb":
        return ibis.duckdb.connect()
    raise UserError(f"unknown engine {engine!r} (set engine: duckdb)")


def read_transactions(backend: BaseBackend, path: Path) -> ir.Table:
    if not path.exists():
        raise UserError(f"transactions not found: {path} (run `churn ingest` first)")
    return backend.read_parquet(path)
