"""Every repo path a docstring or comment cites exists (or is an output the pipeline writes).

A reader follows a cited path to find the design or the code behind a line; a path
to a file that was moved, renamed or never written (a contract page, a design
folder) sends them nowhere. Checked: any ``*.md``, any bare ``*.py``
name, and any path under one of the repo's top-level folders, in the docstrings
and comments of src/churn, tests and benchmarks.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from churn.config import Params

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src/churn", "tests", "benchmarks")
# Top-level folders of the repo: a cited path that starts with one is a repo path.
REPO_FOLDERS = ("src", "tests", "benchmarks", "notebooks", "bin", "backtest")
OUTPUT_FOLDERS = ("data", "metrics", "models", "plots", "reports")
# The project's shared design pages, kept outside the repo with the issues; cited as
# the record of a decision.
SHARED_DOCS = frozenset({"DESIGN.md", "STYLE.md"})
_PATH = re.compile(
    r"(?<![\w./@:-])(?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.(?:md|py|ya?ml|toml|lock|ipynb|json|csv"
    r"|parquet|html|xlsx|txt)\b|(?<![\w./@:-])(?:[\w.-]+/)+"
)


def notes(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every docstring and comment in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            text = ast.get_docstring(node, clean=False)
            if text:
                yield node.body[0].lineno, text
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def cited(text: str) -> Iterator[str]:
    """The paths in ``text`` that claim to be in the repo."""
    for match in _PATH.finditer(text):
        path = match.group(0)
        first = path.split("/", 1)[0]
        doc_or_module = path.endswith(".md") or ("/" not in path and path.endswith(".py"))
        if doc_or_module or ("/" in path and first in REPO_FOLDERS + OUTPUT_FOLDERS):
            yield path


def _outputs() -> set[str]:
    """Every path the pipeline writes (params' paths.*), with the folders above them."""
    found = set()
    for value in Params().paths.model_dump().values():
        path = Path(value)
        found |= {path.as_posix(), *(p.as_posix() for p in path.parents if p != Path())}
    return found


def _named_anywhere(name: str) -> bool:
    return any(next((ROOT / d).rglob(name), None) for d in SCANNED)


def exists(path: str, citing: Path, outputs: set[str]) -> bool:
    """Whether ``path``, cited in ``citing``, names something real."""
    bare = path.rstrip("/")
    if bare in SHARED_DOCS or bare in outputs:
        return True
    for base in (ROOT, citing.parent, ROOT / "src" / "churn"):
        if (base / bare).exists():
            return True
    return "/" not in bare and _named_anywhere(bare)


def missing_citations() -> list[str]:
    outputs = _outputs()
    wrong = []
    for folder in SCANNED:
        for file in sorted((ROOT / folder).rglob("*.py")):
            for line, text in notes(file.read_text(encoding="utf-8")):
                wrong += [
                    f"{file.relative_to(ROOT)}:{line}: {path}"
                    for path in cited(text)
                    if not exists(path, file, outputs)
                ]
    return wrong


def test_every_cited_repo_path_exists() -> None:
    wrong = missing_citations()
    assert not wrong, "cited paths that do not exist:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "note",
    [
        "The numbers come from the score table (CONTRACT.md).",
        "See design/targeting.md for the budget rule.",
        "# mirrors src/churn/scoring/kpi.py",
        "Written to data/scores/score.parquet by `churn score`.",
        "Fitted as in btyd_fit.py.",
    ],
)
def test_a_citation_of_a_missing_file_is_caught(note: str) -> None:
    citing = ROOT / "src" / "churn" / "features" / "rfm.py"
    assert [p for p in cited(note) if not exists(p, citing, _outputs())]


def test_citations_of_real_files_pass() -> None:
    note = (
        "DESIGN.md, Definitions; see buckets.py, scoring/report.py, tests/test_schema.py,"
        " data/scores/scores.parquet, metrics/ and BG/NBD (not a path)."
    )
    citing = ROOT / "src" / "churn" / "features" / "rfm.py"
    assert [p for p in cited(note) if not exists(p, citing, _outputs())] == []
