"""A model folder carries exactly the package modules its served model imports.

`churn train` copies pyfunc.SERVED_MODULES into the folder's code/ (MLflow loads the
model from there), and the DVC train stage depends on exactly those files; a module
the served model imports but the list forgets would make `mlflow models serve` fail,
and one the list keeps for nothing makes the folder change for unrelated edits.
"""

from __future__ import annotations

from pathlib import Path

from tiny_model import scoring_rows, tiny_model

from churn.model import tracking
from churn.model.pyfunc import SERVED_MODULES
from stage_inputs import Package


def test_served_modules_are_what_served_model_imports() -> None:
    package = Package()
    imported = package.closure({"churn.model.served_model"}) - {"churn.model.served_model"}
    modules = {m for m in imported if not str(package.file(m)).endswith("__init__.py")}
    assert set(SERVED_MODULES) == modules


def test_the_model_folder_holds_only_those_modules_and_their_packages(tmp_path: Path) -> None:
    model = tiny_model("platt")
    tracking.save_model(model, scoring_rows()[model.features].head(3), tmp_path / "model")
    code = tmp_path / "model" / "code"
    copied = {p.relative_to(code).as_posix() for p in code.rglob("*.py")}
    expected = {f"{m.replace('.', '/')}.py" for m in SERVED_MODULES}
    expected |= {"churn/__init__.py", "churn/model/__init__.py", "churn/features/__init__.py"}
    assert copied == expected
