"""What a `churn` command reads, found statically: the repository files it runs and the
params keys it touches, to hold dvc.yaml's `deps` and `params` against.

Static on purpose: the walk sees every branch a command can take (function-local
imports, the `--as-of` path of `score`, error paths), so it errs towards a dependency
too many, which costs DVC a rerun, never one too few, which leaves a stale output that
`dvc repro` calls up to date.

* Code: the CLI function of the command and the `cli.py` helpers it calls, then every
  `churn` module they import, anywhere in a module (inside functions too), transitively;
  plus files and folders a module names beside itself (`"templates"`, `"served_model.py"`).
  Empty `__init__.py` files run nothing and are left out.
* Params: attribute chains on the typed `Params` object (`params.export.top_n` is the key
  `export.top_n`; a section handed on whole, `params.train`, is the key `train`). When the
  whole object is handed to a function, that function's reads count, recursively.
  `paths.*` keys come out apart: each names a file the stage must list in deps or outs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from churn.config import Params

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "churn"
WRAPPER = "bin/churn"  # what every stage's cmd runs (it finds the project's interpreter)
ENTRY = "churn.__main__"  # what the wrapper runs: `python -m churn`

# Functions that take the whole Params object without being a stage input: each entry
# says why no DVC output depends on what it reads.
NOT_STAGE_INPUTS = {
    ("churn.model.tracking", "params_hash"): (
        "hashes every param into an MLflow tag that groups runs with the same settings;"
        " no DVC output holds it"
    ),
    ("churn.adhoc", "tracked_paths"): (
        "lists every path the pipeline owns only so that an ad-hoc run (an option given,"
        " never a DVC stage) can refuse to overwrite one; it decides where a one-off run"
        " writes, not what any stage output holds"
    ),
}


class Package:
    """The modules of ``churn`` under ``src``: their files, syntax trees and imports."""

    def __init__(self, root: Path = PROJECT_ROOT) -> None:
        self.root = root
        self.src = root / "src"

    def file(self, module: str) -> Path | None:
        base = self.src.joinpath(*module.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None

    def tree(self, module: str) -> ast.Module:
        return _parse(self._file(module))

    def _file(self, module: str) -> Path:
        path = self.file(module)
        if path is None:
            raise KeyError(f"no module {module} under {self.src}")
        return path

    def import_names(self, module: str) -> dict[str, tuple[str, str | None]]:
        """Name bound by each import in ``module`` -> (module, attribute or None)."""
        names: dict[str, tuple[str, str | None]] = {}
        for node in _runtime_nodes(self.tree(module)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = (alias.name, None)
                    else:
                        head = alias.name.split(".")[0]
                        names[head] = (head, None)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    submodule = f"{base}.{alias.name}"
                    names[bound] = (submodule, None) if self.file(submodule) else (base, alias.name)
        return names

    def imports(self, module: str, within: ast.AST | None = None) -> set[str]:
        """The ``churn`` modules ``module`` imports (only inside ``within`` when given)."""
        found: set[str] = set()
        for node in _runtime_nodes(within or self.tree(module)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        return {name for name in found if self._ours(name)}

    def closure(self, modules: set[str], opaque: frozenset[str] = frozenset()) -> set[str]:
        """``modules``, the packages around them and everything they import, transitively;
        the imports of ``opaque`` modules are not followed (the caller has them already)."""
        seen: set[str] = set()
        todo = list(modules)
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            parts = module.split(".")
            todo.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
            if module not in opaque:
                todo.extend(self.imports(module))
        return seen

    def files(self, modules: set[str]) -> set[str]:
        """Repository paths of the modules' files (empty ``__init__.py`` files run nothing)
        and of the files and folders they name beside themselves."""
        paths: set[str] = set()
        for module in modules:
            path = self._file(module)
            if not is_empty_module(path):
                paths.add(self.relative(path))
            for resource in _named_neighbours(path):
                paths.update(self.relative(p) for p in _files_under(resource))
        return paths

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _ours(self, module: str) -> bool:
        return module.split(".")[0] == PACKAGE and self.file(module) is not None

    def _absolute(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = module if self._file(module).name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        return ".".join([*parts, node.module] if node.module else parts)


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def is_empty_module(path: Path) -> bool:
    """True for a module with no statement but perhaps a docstring."""
    body = _parse(path).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return not body


def _named_neighbours(path: Path) -> set[Path]:
    """Files and folders beside ``path`` that it names in a string (a template folder, the
    "models from code" file); subpackages are found through imports, not names."""
    beside = {
        p.name: p
        for p in path.parent.iterdir()
        if p.name not in ("__pycache__", "__init__.py") and not (p / "__init__.py").exists()
    }
    named = {
        node.value
        for node in ast.walk(_parse(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    return {beside[name] for name in named & set(beside) if beside[name] != path}


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]


@dataclass(frozen=True)
class StageInputs:
    """What one `churn` command reads: repository files, params keys and paths keys."""

    files: frozenset[str]
    params: frozenset[str]
    paths: frozenset[str]
    whole_params: frozenset[str]  # where the whole Params object escapes (should be none)


def command_inputs(command: str, package: Package | None = None) -> StageInputs:
    """The files and params keys of `churn <command>`, as run by a DVC stage."""
    package = package or Package()
    cli = "churn.cli"
    reached = _cli_functions(package, command)
    # cli.py holds every command: only its module-level imports and those of the
    # functions this command reaches count, not the other commands' local imports.
    modules = {ENTRY, cli}
    modules.update(
        package.imports(cli, ast.Module(body=_module_level(package, cli), type_ignores=[]))
    )
    for function in reached:
        modules.update(package.imports(cli, function))
    files = package.files(package.closure(modules, opaque=frozenset({cli}))) | {WRAPPER}

    reader = _ParamsReader(package)
    chains: set[tuple[str, ...]] = set()
    whole: set[str] = set()
    for function in reached:
        found, escaped = reader.reads(cli, function, frozenset())
        chains |= found
        whole |= escaped
    params = {".".join(c) for c in chains if c[0] != "paths"}
    paths = {c[1] for c in chains if c[0] == "paths" and len(c) > 1}
    if ("paths",) in chains:
        whole.add(f"`churn {command}` hands on the whole paths section")
    return StageInputs(frozenset(files), frozenset(params), frozenset(paths), frozenset(whole))


def _module_level(package: Package, module: str) -> list[ast.stmt]:
    return [
        node
        for node in package.tree(module).body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]


def _cli_functions(package: Package, command: str) -> list[ast.FunctionDef]:
    """The command's function and every cli.py function it calls, transitively; with
    ``main``, the root callback and the ``_State`` methods every command runs through."""
    tree = package.tree("churn.cli")
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    methods = [
        item
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef)
    ]
    commands: dict[str, ast.FunctionDef] = {}
    for node in functions.values():
        name = _command_name(node)
        if name is not None:
            commands[name] = node
    if command not in commands:
        raise KeyError(f"`churn {command}` is not a command of churn.cli ({sorted(commands)})")
    roots = [commands[command], functions["main"], *methods]
    roots += [node for node in functions.values() if _is_callback(node)]
    reached: dict[str, ast.FunctionDef] = {}
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node.name in reached and reached[node.name] is node:
            continue
        reached[node.name] = node
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in functions
            ):
                todo.append(functions[call.func.id])
    return list(reached.values())


def _command_name(node: ast.FunctionDef) -> str | None:
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "command"
        ):
            for keyword in decorator.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
            return node.name.replace("_", "-")
    return None


def _is_callback(node: ast.FunctionDef) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "callback"
        for d in node.decorator_list
    )


def field_prefix(chain: tuple[str, ...]) -> tuple[str, ...]:
    """The longest start of ``chain`` that names params fields (``snapshots.as_of`` of
    ``snapshots.as_of.isoformat``; ``snapshots`` of ``snapshots.model_dump``)."""
    model: Any = Params
    prefix: list[str] = []
    for name in chain:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        if name not in model.model_fields:
            break
        prefix.append(name)
        model = model.model_fields[name].annotation
    return tuple(prefix)


class _ParamsReader:
    """Params chains a function reads through names bound to the whole Params object."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.memo: dict[tuple[str, str, frozenset[str]], tuple[set[tuple[str, ...]], set[str]]] = {}

    def reads(
        self, module: str, function: ast.FunctionDef, roots: frozenset[str]
    ) -> tuple[set[tuple[str, ...]], set[str]]:
        key = (module, function.name, roots)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = (set(), set())  # a recursive call sees nothing new
        parents = {
            child: node for node in ast.walk(function) for child in ast.iter_child_nodes(node)
        }
        roots = roots | _params_assignments(function)
        aliases: dict[str, tuple[str, ...]] = {}
        alias_values: set[ast.AST] = set()
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                chain = _chain(node.value, roots, aliases)
                if chain is not None:
                    aliases[node.targets[0].id] = field_prefix(chain)
                    alias_values.add(node.value)
        chains: set[tuple[str, ...]] = set()
        escaped: set[str] = set()
        for node in ast.walk(function):
            if not isinstance(node, ast.Name) or node.id not in roots | set(aliases):
                continue
            if isinstance(node.ctx, ast.Store):  # `params = ...` binds, it does not read
                continue
            top, chain = _maximal(node, parents, roots, aliases)
            if top in alias_values:
                continue
            prefix = field_prefix(chain)
            if prefix:
                chains.add(prefix)
            elif chain:  # a method of the whole object, e.g. params.model_dump()
                escaped.add(f"{module}.{function.name} calls params.{chain[0]}")
            else:
                found, lost = self._handed_on(module, function, top, parents)
                chains |= found
                escaped |= lost
        self.memo[key] = (chains, escaped)
        return chains, escaped

    def _handed_on(
        self, module: str, function: ast.FunctionDef, node: ast.AST, parents: dict[ast.AST, ast.AST]
    ) -> tuple[set[tuple[str, ...]], set[str]]:
        """What the callee reads when the whole object is passed as an argument."""
        where = f"{module}.{function.name}"
        parent = parents.get(node)
        keyword = None
        if isinstance(parent, ast.keyword):
            keyword, parent = parent.arg, parents.get(parent)
        if not isinstance(parent, ast.Call) or node is parent.func:
            return set(), {f"{where} uses the whole params object ({ast.unparse(parent or node)})"}
        target = self._resolve(module, parent.func)
        if target is None:
            return set(), {f"{where} hands params to {ast.unparse(parent.func)}"}
        callee_module, callee = target
        if (callee_module, callee.name) in NOT_STAGE_INPUTS:
            return set(), set()
        arguments = [*callee.args.posonlyargs, *callee.args.args]
        if keyword is None:
            index = parent.args.index(node)  # type: ignore[arg-type]
            if index >= len(arguments):
                return set(), {f"{where} hands params to {callee.name} as *args"}
            keyword = arguments[index].arg
        return self.reads(callee_module, callee, frozenset({keyword}))

    def _resolve(self, module: str, func: ast.expr) -> tuple[str, ast.FunctionDef] | None:
        names = self.package.import_names(module)
        if isinstance(func, ast.Name):
            local = _functions(self.package.tree(module))
            if func.id in local:
                return module, local[func.id]
            target = names.get(func.id)
            if target and target[1]:
                return self._function(target[0], target[1])
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = names.get(func.value.id)
            if target and target[1] is None:
                return self._function(target[0], func.attr)
        return None

    def _function(self, module: str, name: str) -> tuple[str, ast.FunctionDef] | None:
        if self.package.file(module) is None:
            return None
        found = _functions(self.package.tree(module)).get(name)
        return (module, found) if found else None


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _params_assignments(function: ast.FunctionDef) -> frozenset[str]:
    """Names bound to the whole Params object: ``params = _state.params()`` or a
    parameter annotated ``Params``."""
    names = {
        arg.arg
        for arg in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
        if arg.annotation is not None and ast.unparse(arg.annotation).strip("'\"") == "Params"
    }
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "_state.params"
        ):
            names.add(node.targets[0].id)
    return frozenset(names)


def _chain(
    node: ast.expr, roots: frozenset[str], aliases: dict[str, tuple[str, ...]]
) -> tuple[str, ...] | None:
    """``params.a.b`` -> ("a", "b") when rooted at a params name or alias, else None."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    if node.id in roots:
        return tuple(reversed(attrs))
    if node.id in aliases:
        return aliases[node.id] + tuple(reversed(attrs))
    return None


def _maximal(
    name: ast.Name,
    parents: dict[ast.AST, ast.AST],
    roots: frozenset[str],
    aliases: dict[str, tuple[str, ...]],
) -> tuple[ast.AST, tuple[str, ...]]:
    """The longest attribute chain above ``name`` and what it reads."""
    top: ast.AST = name
    while isinstance(parents.get(top), ast.Attribute):
        top = parents[top]
    chain = _chain(top, roots, aliases)  # type: ignore[arg-type]
    return top, chain or ()


# dvc.yaml ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DvcStage:
    """One stage of a dvc.yaml with its paths resolved to repository paths."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    params: tuple[str, ...]
    outs: tuple[str, ...]


def dvc_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The project's pipelines: dvc.yaml at the root and in any folder one level down."""
    return [p for p in [root / "dvc.yaml", *sorted(root.glob("*/dvc.yaml"))] if p.is_file()]


def load_stages(dvc_yaml: Path, root: Path = PROJECT_ROOT) -> dict[str, DvcStage]:
    """The stages of ``dvc_yaml``, `${...}` filled in from its vars (default params.yaml)."""
    here = dvc_yaml.parent
    spec = yaml.safe_load(dvc_yaml.read_text())
    variables: dict[str, Any] = {}
    for entry in spec.get("vars", ["params.yaml"]):
        if isinstance(entry, str) and (here / entry).is_file():
            variables.update(yaml.safe_load((here / entry).read_text()))

    def fill(text: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            value: Any = variables
            for part in match.group(1).split("."):
                value = value[part]
            return str(value)

        return re.sub(r"\$\{\s*([\w.]+)\s*\}", lookup, text)

    stages: dict[str, DvcStage] = {}
    for name, stage in spec["stages"].items():
        wdir = (here / stage.get("wdir", ".")).resolve()

        def repo_path(entry: Any, wdir: Path = wdir) -> str:
            text = fill(next(iter(entry)) if isinstance(entry, dict) else entry)
            return (wdir / text).resolve().relative_to(root.resolve()).as_posix()

        params: list[str] = []
        for entry in stage.get("params", []):
            if isinstance(entry, dict):
                for keys in entry.values():
                    params.extend(keys)
            else:
                params.append(entry)
        stages[name] = DvcStage(
            name=name,
            cmd=fill(stage["cmd"]),
            deps=tuple(repo_path(d) for d in stage.get("deps", [])),
            params=tuple(params),
            outs=tuple(
                repo_path(o) for kind in ("outs", "metrics", "plots") for o in stage.get(kind, [])
            ),
        )
    return stages


def params_values(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    return dict(yaml.safe_load((root / "params.yaml").read_text()))


# the check -----------------------------------------------------------------------------


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def _is_code(path: str) -> bool:
    return path.startswith(("src/", "bin/"))


def _key_covers(declared: str, key: str) -> bool:
    return key == declared or key.startswith(declared + ".")


def stage_problems(
    stage: DvcStage, package: Package | None = None, root: Path = PROJECT_ROOT
) -> list[str]:
    """Where ``stage``'s deps and params differ from what its command reads; empty if exact.

    Code deps (under src/ and bin/) must cover every file the command runs, and each must
    be needed: a folder only when the command runs all of it. Params must cover every key
    read and list nothing unread. Every paths.* key the command touches must be one of
    the stage's deps or outs (or a folder holding one).
    """
    package = package or Package(root)
    prefix = f"{WRAPPER} "
    if not stage.cmd.startswith(prefix):
        return [f"{stage.name}: cmd {stage.cmd!r} does not run `{WRAPPER}` (PATH-dependent)"]
    command = stage.cmd[len(prefix) :].split()[0]
    needs = command_inputs(command, package)
    problems = [f"{stage.name}: {where}" for where in sorted(needs.whole_params)]
    code = [d for d in stage.deps if _is_code(d)]
    for path in sorted(needs.files):
        if not any(_covers(d, path) for d in code):
            problems.append(f"{stage.name}: deps miss {path} (`churn {command}` runs it)")
    for dep in code:
        under = [p for p in _tracked_files(root / dep, root)]
        needed = [p for p in under if p in needs.files]
        if not needed:
            problems.append(f"{stage.name}: deps list {dep}, which `churn {command}` never runs")
        elif len(needed) < len(under):
            extra = ", ".join(p for p in under if p not in needs.files)
            problems.append(
                f"{stage.name}: dep {dep} is wider than what `churn {command}` runs"
                f" (also {extra}); list its files instead"
            )
    for key in sorted(needs.params):
        if not any(_key_covers(p, key) for p in stage.params):
            problems.append(f"{stage.name}: params miss {key} (`churn {command}` reads it)")
    for declared in stage.params:
        if not any(_key_covers(declared, k) or _key_covers(k, declared) for k in needs.params):
            problems.append(
                f"{stage.name}: params list {declared}, which `churn {command}` never reads"
            )
    paths = params_values(root).get("paths", {})
    files = [*stage.deps, *stage.outs]
    for key in sorted(needs.paths):
        value = Path(str(paths.get(key, Params().paths.model_dump()[key]))).as_posix()
        if not any(_covers(value, f) for f in files):
            problems.append(
                f"{stage.name}: `churn {command}` reads or writes paths.{key} ({value}),"
                " which is in neither its deps nor its outs"
            )
    return problems


def _tracked_files(path: Path, root: Path) -> list[str]:
    """Repository files at or under ``path`` that could run (not caches, not empty
    ``__init__.py`` files)."""
    files = _files_under(path) if path.exists() else []
    return [
        p.relative_to(root).as_posix()
        for p in files
        if not (p.name == "__init__.py" and is_empty_module(p))
    ]
