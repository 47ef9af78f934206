"""No function in src/churn is 60 lines or more (issue 15's "done when").

A function that long holds several steps that a reader has to tell apart unaided; split
into named steps it reads top to bottom, and each step's docstring says why. Length is
counted as the issue counts it: ``end_lineno - lineno + 1`` of the ``def`` (docstring
and nested functions included, decorators not), for every function and method, nested
ones too.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT_ROOT / "src" / "churn"
MAX_LINES = 59


@dataclass(frozen=True)
class LongFunction:
    path: str  # relative to the project root, POSIX
    line: int
    name: str
    lines: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name} is {self.lines} lines"


def long_functions(root: Path, base: Path, limit: int = MAX_LINES) -> list[LongFunction]:
    """Every function under ``root`` longer than ``limit`` lines, longest first."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(base).as_posix()
                    found.append(LongFunction(where, node.lineno, node.name, lines))
    return sorted(found, key=lambda f: (-f.lines, f.path, f.line))


def test_no_function_is_60_lines_or_more() -> None:
    offenders = [str(f) for f in long_functions(PACKAGE, PROJECT_ROOT)]
    assert offenders == [], (
        f"functions over {MAX_LINES} lines (split each into named steps): {offenders}"
    )


def _function(name: str, lines: int, *, prefix: str = "def", indent: int = 0) -> str:
    """Source of a function exactly ``lines`` long: def, docstring, body, return."""
    body = [f'    """{name}."""', *(f"    x_{i} = {i}" for i in range(lines - 3)), "    return"]
    return textwrap.indent("\n".join([f"{prefix} {name}() -> None:", *body]), " " * indent)


def test_the_count_is_the_issues_count(tmp_path: Path) -> None:
    """59 lines pass and 60 fail, for plain, async, nested and method definitions."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text(
        "\n\n".join(
            [
                _function("fits", 59),
                _function("too_long", 60),
                "@staticmethod\n" + _function("decorated_fits", 59),
                _function("too_long_async", 60, prefix="async def"),
            ]
        )
    )
    method = _function("too_long_method", 60, indent=4)
    (package / "sub" / "b.py").write_text(f"class C:\n{method}\n")
    outer = _function("outer", 62).replace("    return", _function("inner", 60, indent=4), 1)
    (package / "sub" / "c.py").write_text(outer)

    found = {(f.path, f.name, f.lines) for f in long_functions(package, tmp_path)}

    assert found == {
        ("pkg/a.py", "too_long", 60),
        ("pkg/a.py", "too_long_async", 60),
        ("pkg/sub/b.py", "too_long_method", 60),
        ("pkg/sub/c.py", "outer", 121),
        ("pkg/sub/c.py", "inner", 60),
    }
