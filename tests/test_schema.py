"""churn.schema is the one definition of each table's columns; these tests keep it so.

The column lists themselves are checked against real outputs where the tables are
written (tests/data/test_ingest.py, tests/scoring/test_score.py, the e2e test);
here: the one copy that must stay separate agrees with the schema, the params
that name columns agree with it, and no module grows its own column list again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import churn
from churn import schema
from churn.config import ColumnMap, CustomerColumnMap
from churn.data.columns import CUSTOMER_ALIASES, TRANSACTION_ALIASES
from churn.model import churn_model
from churn.model.model_folder import served_modules

PACKAGE = Path(churn.__file__).parent
# Module-level column lists allowed outside churn.schema, each with the reason.
OWN_COLUMN_LISTS = {
    # The served model's code: MLflow copies it into the model folder byte for byte,
    # and the folder holds only what it imports, so it cannot import churn.schema
    # without changing every saved model. Pinned to the schema below.
    ("churn.model.churn_model", "ID_COLUMNS"),
    # The generator's raw sample (an export with a shop's own names, the input ingest
    # maps from) and its hidden truth: written by churn.data.generate, read by no module.
    ("churn.data.generate", "RAW_COLUMNS"),
    ("churn.data.generate", "TRUTH_COLUMNS"),
    # Features the BTYD fits read: feature names are whatever churn.features computes
    # (the schema holds only a snapshot's ids and label), so they stay beside the fits.
    ("churn.features.btyd_features", "INPUT_COLUMNS"),
    # The uplift model's training rows: a frame inside churn.outcomes, never written.
    ("churn.outcomes.uplift_rows", "OUTCOME_COLUMNS"),
}


def test_served_model_code_spells_the_snapshot_ids_and_label_as_the_schema() -> None:
    assert "churn.schema" not in served_modules()
    assert churn_model.ID_COLUMNS == schema.SNAPSHOT_ID_COLUMNS
    assert churn_model.LABEL == schema.LABEL


def test_column_params_name_the_schema_columns() -> None:
    """ingest.columns.* and ingest.customers.columns.* are keyed by canonical column."""
    transaction = {"timestamp" if c == "ts" else c for c in schema.TRANSACTION_COLUMNS}
    transaction |= set(schema.OPTIONAL_TRANSACTION_COLUMNS)
    assert set(ColumnMap.model_fields) == set(TRANSACTION_ALIASES) == transaction
    customers = set(schema.CUSTOMER_COLUMNS)
    assert set(CustomerColumnMap.model_fields) == set(CUSTOMER_ALIASES) == customers


def test_tables_nest_as_written() -> None:
    assert schema.TARGET_COLUMNS[: len(schema.SCORE_COLUMNS)] == schema.SCORE_COLUMNS
    assert set(schema.REASON_COLUMNS) <= set(schema.SCORE_COLUMNS)
    assert schema.LABEL not in schema.SNAPSHOT_ID_COLUMNS
    assert schema.SCORE_SPLIT not in schema.LABELLED_SPLITS
    exported = set(schema.EXPORT_HEADERS) - {"priority"}
    assert exported <= set(schema.TARGET_COLUMNS) | set(schema.CONTACT_COLUMNS)
    assert len(set(schema.EXPORT_HEADERS.values())) == len(schema.EXPORT_HEADERS)


def test_subset_names_only_columns_of_the_table() -> None:
    assert schema.subset(schema.SCORE_COLUMNS, "segment", "customer_id") == (
        "segment",
        "customer_id",
    )
    with pytest.raises(ValueError, match="not columns of the table: churn_score"):
        schema.subset(schema.SCORE_COLUMNS, "customer_id", "churn_score")
    with pytest.raises(ValueError, match="a column named twice"):
        schema.subset(schema.SCORE_COLUMNS, "segment", "segment")


def _literal_column_lists(source: str) -> list[str]:
    """Module-level ``*_COLUMNS`` / ``*_HEADERS`` names bound to a literal of strings."""
    found = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        value = getattr(node, "value", None)
        if isinstance(value, ast.Dict):
            items = [k for k in value.keys if k is not None]
        elif isinstance(value, (ast.List, ast.Tuple, ast.Set)):
            items = value.elts
        else:
            continue
        literal = items and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items
        )
        for target in targets:
            name = getattr(target, "id", "")
            if literal and name.endswith(("_COLUMNS", "_HEADERS")):
                found.append(name)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_but_the_schema_writes_out_a_column_list() -> None:
    """A second literal list of a table's columns is how SCORE_COLUMNS came to disagree."""
    own = [
        (_module_name(path), name)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "schema.py"
        for name in _literal_column_lists(path.read_text(encoding="utf-8"))
    ]
    assert set(own) == OWN_COLUMN_LISTS, (
        "define a table's columns in src/churn/schema.py and derive the part a module"
        " reads with schema.subset"
    )


def test_a_planted_column_list_is_found() -> None:
    planted = 'SCORE_COLUMNS = ("customer_id", "as_of")\nX_HEADERS: dict = {"a": "A"}\n'
    assert _literal_column_lists(planted) == ["SCORE_COLUMNS", "X_HEADERS"]
    assert _literal_column_lists("SCORE_COLUMNS = (*schema.SCORE_COLUMNS,)\n") == []
