"""The MLflow model folder churn writes: the same bytes for the same model, on any machine.

`churn train` writes it to ``paths.model_dir``, a DVC output that a fresh clone
must reproduce exactly. MLflow's folder, as MLflow writes it, is not a function
of the model alone: the MLmodel file holds the time it was written, a random
uuid, the scratch paths the artifacts were copied from and the absolute path of
the code file; ``python_env.yaml``, ``conda.yaml`` and MLmodel hold the
interpreter's patch version (3.11.2 on one host, 3.11.7 on the next) and pin
pip, setuptools and wheel to whatever the virtualenv happens to hold; MLflow
copies the working directory's ``uv.lock`` and ``pyproject.toml``; and the
whole churn package went in as code, so editing any module, even one the
served model never imports, changed the model folder.

Here the code copied is what the served model imports (:func:`served_code`),
nothing of the uv project is copied, and :func:`normalise` drops or shortens
those fields. MLflow needs none of them to load or serve the model: it finds
the artifacts and the code file by their relative paths, makes a new uuid when
it loads, and accepts a major.minor Python version (``mlflow models serve``
installs the newest patch release). The registry keeps its own copy with the
run, time and uuid in it.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

import churn

# What MLflow imports when it loads a churn model (via served_model.py).
SERVED_ENTRY = "churn.model.pyfunc"
MLMODEL = "MLmodel"
PYTHON_ENV = "python_env.yaml"
CONDA_ENV = "conda.yaml"
_VOLATILE = ("utc_time_created", "model_uuid")


def served_modules(entry: str = SERVED_ENTRY) -> list[str]:
    """``entry`` and every churn module it imports, directly or not, with their packages.

    Read from the source (imports anywhere in a module, lazy ones too), so
    nothing is imported to find out.
    """
    found: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if name in found or path is None:  # None: an attribute (``from churn.x import f``)
            continue
        found.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pending += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    packages = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return sorted(found | packages)


def served_code(scratch: Path) -> Path:
    """A copy of the package holding only :func:`served_modules`, for MLflow's ``code_paths``."""
    root = _package_dir()
    target = scratch / root.name
    for name in served_modules():
        source = _module_file(name)
        assert source is not None
        destination = target / source.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def normalise(folder: Path) -> None:
    """Rewrite the host- and time-dependent fields of a saved model folder (see above)."""
    mlmodel = _read_yaml(folder / MLMODEL)
    for key in _VOLATILE:
        mlmodel.pop(key, None)
    for flavor in mlmodel.get("flavors", {}).values():
        for artifact in flavor.get("artifacts", {}).values():
            artifact.pop("uri", None)  # the scratch file it was copied from
        if "model_code_path" in flavor:
            flavor["model_code_path"] = Path(flavor["model_code_path"]).name
        if "python_version" in flavor:
            flavor["python_version"] = _major_minor(flavor["python_version"])
    _write_yaml(mlmodel, folder / MLMODEL)
    python_env = _read_yaml(folder / PYTHON_ENV)
    python_env["python"] = _major_minor(python_env["python"])
    python_env["build_dependencies"] = [
        re.split(r"[=<>!~ ]", str(dep), maxsplit=1)[0]
        for dep in python_env.get("build_dependencies", [])
    ]
    _write_yaml(python_env, folder / PYTHON_ENV)
    conda = _read_yaml(folder / CONDA_ENV)
    conda["dependencies"] = [
        f"python={_major_minor(dep.split('=', 1)[1])}"
        if isinstance(dep, str) and dep.startswith("python=")
        else "pip"
        if isinstance(dep, str) and dep.startswith("pip")
        else dep
        for dep in conda.get("dependencies", [])
    ]
    _write_yaml(conda, folder / CONDA_ENV)


def _major_minor(version: Any) -> str:
    return ".".join(str(version).split(".")[:2])


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a YAML mapping")
    return data


def _write_yaml(data: dict[str, Any], path: Path) -> None:
    # As MLflow writes them (Model.to_yaml): block style, keys sorted.
    path.write_text(yaml.safe_dump(data, default_flow_style=False), encoding="utf-8")


def _package_dir() -> Path:
    return Path(churn.__file__).parent


def _module_file(name: str) -> Path | None:
    """The source file of churn module ``name``; None for anything else."""
    parts = name.split(".")
    if parts[0] != "churn":
        return None
    base = _package_dir().joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None
