"""Set a few values of one section of params.yaml in place, keeping every comment.

A YAML dump would drop the comments that document each knob and reflow the file,
and other branches edit the same file; so this edits only the value on each key's
own line (``  key: value  # comment``) and leaves every other byte alone. A key that
is missing from the section, or whose value is not on its own line, is an error
rather than a silent append.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from churn.atomic import atomic_path
from churn.errors import UserError

_SECTION = re.compile(r"^(?P<name>[A-Za-z_][\w-]*):\s*(#.*)?$")
_KEY = re.compile(
    r"^(?P<indent>[ ]+)(?P<key>[A-Za-z_][\w-]*):(?P<space>[ ]+)"
    r"(?P<value>[^#\s][^#]*?)(?P<rest>\s*(#.*)?)$"
)


def set_section_values(path: Path, section: str, values: dict[str, Any]) -> None:
    """Rewrite ``section.key`` for each key in ``values`` in the YAML file at ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    todo = dict(values)
    inside = False
    for i, line in enumerate(lines):
        top = _SECTION.match(line.rstrip("\n"))
        if line[:1].strip() and not line.startswith("#"):  # a top-level key: a new section
            inside = top is not None and top["name"] == section
            continue
        key = _KEY.match(line.rstrip("\n"))
        if inside and key and key["key"] in todo and len(key["indent"]) == 2:
            value = str(todo.pop(key["key"]))
            # A comment stays in its column while the new value fits in the old one's width.
            pad = " " * max(len(key["value"]) - len(value), 0) if key["rest"].strip() else ""
            rest = key["rest"] if key["rest"].strip() else ""
            eol = line[len(line.rstrip("\n")) :]
            lines[i] = f"{key['indent']}{key['key']}:{key['space']}{value}{pad}{rest}{eol}"
    if todo:
        raise UserError(
            f"{path}: no line `{section}.{next(iter(todo))}: value` to set;"
            " add the key to its section and run again"
        )
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
