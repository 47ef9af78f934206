"""The model folder `churn train` writes is the same bytes for the same model, anywhere.

Saved twice into different folders (different scratch paths, a second later),
every file must match: MLflow's MLmodel otherwise holds the time, a uuid and
scratch paths. The code copied in is what the served model imports, no more
(editing the report code must not change the model), and MLflow still loads it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from tiny_model import scoring_rows, tiny_model

import churn
from churn.model import tracking
from churn.model.model_folder import served_modules


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    model = tiny_model("platt")
    example = scoring_rows()[model.features].head(3)
    first = tmp_path_factory.mktemp("first") / "model"
    second = tmp_path_factory.mktemp("second") / "deeper" / "model"
    tracking.save_model(model, example, first)
    tracking.save_model(model, example, second)
    return first, second


def test_saving_the_same_model_twice_gives_the_same_bytes(saved: tuple[Path, Path]) -> None:
    first, second = (_files(folder) for folder in saved)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_mlmodel_holds_nothing_of_the_host_or_the_moment(saved: tuple[Path, Path]) -> None:
    folder = saved[0]
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert "utc_time_created" not in mlmodel and "model_uuid" not in mlmodel
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["model_code_path"] == "served_model.py"
    assert all(set(a) == {"path"} for a in pyfunc["artifacts"].values())
    major_minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert pyfunc["python_version"] == major_minor
    assert yaml.safe_load((folder / "python_env.yaml").read_text())["python"] == major_minor
    assert (
        f"python={major_minor}"
        in yaml.safe_load((folder / "conda.yaml").read_text())["dependencies"]
    )
    text = (folder / "MLmodel").read_text()
    for path in (tempfile.gettempdir(), str(Path(churn.__file__).parents[1])):
        assert path not in text, f"{path} is left in MLmodel"
    assert not (folder / "uv.lock").exists() and not (folder / "pyproject.toml").exists()


def test_the_code_is_what_the_served_model_imports(saved: tuple[Path, Path]) -> None:
    code = saved[0] / "code"
    copied = {
        ".".join(p.relative_to(code).with_suffix("").parts).removesuffix(".__init__")
        for p in code.rglob("*.py")
    }
    assert copied == set(served_modules())
    assert "churn.cli" not in copied and "churn.scoring.report" not in copied
    # What importing the served entry point really loads, in a fresh interpreter.
    probe = (
        "import sys, churn.model.pyfunc;"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'churn'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(loaded) <= copied


def test_mlflow_loads_the_folder(saved: tuple[Path, Path]) -> None:
    model = tiny_model("platt")
    rows = scoring_rows()[model.features]
    served = mlflow.pyfunc.load_model(str(saved[1]))
    predicted = served.predict(rows)["churn_probability"].to_numpy()
    np.testing.assert_array_equal(predicted, model.churn_probability(rows))
