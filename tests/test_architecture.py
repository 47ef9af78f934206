"""Imports in src/churn point one way: down the rule of direction in ARCHITECTURE.md.

The rule is read from ARCHITECTURE.md itself, so the page and the check cannot
drift. Every import is found statically (``ast``), function-local and
``TYPE_CHECKING`` ones included: a lazy import that runs against the rule is as
much a tangle as a top-level one, it only shows up later.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import churn

PACKAGE = Path(churn.__file__).parent
ARCHITECTURE = PACKAGE.parents[1] / "ARCHITECTURE.md"


def read_rule(text: str) -> list[frozenset[str]]:
    """The layers of the rule, top first: the ``text`` block after its heading."""
    section = text.split("## The rule of direction", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block, "ARCHITECTURE.md: no ```text block under 'The rule of direction'"
    return [frozenset(line.split()) for line in block.group(1).splitlines() if line.strip()]


RULE = read_rule(ARCHITECTURE.read_text(encoding="utf-8"))


def rank(module: str, rule: list[frozenset[str]] = RULE) -> int:
    """A churn module's line in the rule, 0 at the top; the package itself is at the bottom."""
    if module == "churn":
        return len(rule) - 1
    part = module.split(".")[1]
    for i, names in enumerate(rule):
        if part in names:
            return i
    raise AssertionError(f"{module} has no place in ARCHITECTURE.md's rule of direction")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, importer: str, is_package: bool = False) -> Iterator[Import]:
    """Every churn module ``source`` imports, anywhere in it (relative ones resolved)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = importer.split(".")
                keep = len(package) - node.level + (1 if is_package else 0)
                base = ".".join([*package[:keep], *([base] if base else [])])
            # `from churn import schema` imports a module; `from churn.x import f` the module x.
            names = [
                f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names
            ]
        else:
            continue
        for name in names:
            if name == "churn" or name.startswith("churn."):
                yield Import(importer, name, node.lineno)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def against_the_rule(found: Iterator[Import]) -> list[str]:
    return [
        f"{i.importer} (line {i.line}) imports {i.imported}"
        for i in found
        if rank(i.imported) < rank(i.importer)
    ]


def all_imports() -> Iterator[Import]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        yield from imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")


def test_every_module_has_a_place_in_the_rule() -> None:
    for path in PACKAGE.rglob("*.py"):
        rank(module_name(path))  # raises for a module the rule does not place


def test_no_import_runs_up_the_rule() -> None:
    wrong = against_the_rule(all_imports())
    assert not wrong, "imports against ARCHITECTURE.md's rule of direction:\n" + "\n".join(wrong)


def test_the_bottom_line_imports_nothing_from_churn() -> None:
    bottom = RULE[-1]
    found = [
        i for i in all_imports() if i.importer != "churn" and i.importer.split(".")[1] in bottom
    ]
    assert not found, (
        f"{found[0].importer} imports {found[0].imported}; it must import no churn module"
    )


def test_the_rule_is_the_designed_order() -> None:
    """DESIGN.md's order: cli/web -> nightly -> stages -> outcomes -> scoring -> model ->
    features -> data -> schema/config."""
    designed = ["cli", "nightly", "stages", "outcomes", "scoring", "model", "features", "data"]
    assert [rank(f"churn.{p}") for p in designed] == sorted(rank(f"churn.{p}") for p in designed)
    assert len({rank(f"churn.{p}") for p in designed}) == len(designed)
    assert rank("churn.web") == rank("churn.cli")
    assert rank("churn.schema") > rank("churn.data") and rank("churn.config") > rank("churn.data")


@pytest.mark.parametrize(
    ("importer", "source", "is_package"),
    [
        # a model module reaching up into scoring, in a function body
        ("churn.model.evaluate", "def f():\n    from churn.scoring.score import x\n", False),
        # data importing features, relative
        ("churn.data.ingest", "from ..features import tables\n", False),
        # scoring importing the nightly machinery it must not depend on
        ("churn.scoring.export", "import churn.nightly.guards\n", False),
        # the package's __init__ importing the CLI
        ("churn.features", "from churn import cli\n", True),
    ],
)
def test_a_planted_backwards_import_fails(importer: str, source: str, is_package: bool) -> None:
    assert against_the_rule(imports(source, importer, is_package))


def test_a_planted_import_from_the_bottom_line_is_caught() -> None:
    found = list(imports("from churn.config import Params\n", "churn.schema"))
    assert against_the_rule(iter(found)) == ["churn.schema (line 1) imports churn.config"]


def test_downward_imports_pass() -> None:
    source = "from churn.features.tables import x\nfrom churn import schema\nimport churn\n"
    assert not against_the_rule(imports(source, "churn.scoring.score"))
