"""Pickled model folders, as an attacker (or a churn from before issue 13) leaves them.

``PlantedModel`` is a real MLflow pyfunc saved the old way (cloudpickle in
``python_model.pkl``) whose unpickling runs a shell command that creates a
marker file: exactly the attack of issue 13, with a harmless payload. A test
proves the bait is live (``unpickle_marker`` creates the marker) and that
churn refuses it without ever creating the marker.
"""

from __future__ import annotations

import os
import pickle
import shlex
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

PICKLE_FILE = "python_model.pkl"
# Given, so MLflow does not infer them: its inference loads (unpickles) the model.
_REQUIREMENTS = ["mlflow"]


class PlantedModel(PythonModel):
    """Pickles as ``os.system("touch MARKER")``: loading it runs the command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": [0.0] * len(model_input)})


def save_pickled_model(folder: Path, marker: Path) -> Path:
    """An old-format MLflow model folder at ``folder`` whose pickle touches ``marker``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            path=str(folder), python_model=PlantedModel(marker), pip_requirements=_REQUIREMENTS
        )
    assert (folder / PICKLE_FILE).is_file() and not marker.exists()
    return folder


def log_pickled_model(marker: Path, registered_model: str) -> str:
    """Log and register an old-format model in the active run; returns its version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=PlantedModel(marker),
            pip_requirements=_REQUIREMENTS,
            registered_model_name=registered_model,
        )
    assert not marker.exists()
    return str(info.registered_model_version)


def pickle_bytes(marker: Path) -> bytes:
    """A bare pickle that touches ``marker`` when loaded (to plant in place of any file)."""
    return pickle.dumps(PlantedModel(marker))


def unpickle_marker(path: Path) -> None:
    """Load ``path`` with pickle, as the old loader did: proves the bait is live."""
    pickle.loads(path.read_bytes())
