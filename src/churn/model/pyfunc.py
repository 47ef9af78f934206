"""The MLflow pyfunc wrapper: how `mlflow models serve`, `spark_udf` and
`mlflow.pyfunc.load_model` run a churn model.

MLflow builds it from code (``served_model.py``, "models from code"), never
from a pickle, and it parses the booster and spec that MLflow hands it as
artifacts with the same code as churn's own loader (churn.model.model_files),
so a served model returns the probabilities churn scores with. It does not check
the training run's checksums (a serving container has no tracking store);
churn's loader (churn.model.loader) does, and never runs this code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from churn.model.churn_model import ChurnModel
from churn.model.model_files import read_model_files
from churn.model.model_record import CODE_PATH

# The artifact names the model folder's MLmodel file maps to the two files.
BOOSTER_ARTIFACT = "booster"
SPEC_ARTIFACT = "spec"
# The "models from code" file MLflow copies into every model folder and runs.
MODEL_CODE = Path(__file__).with_name(CODE_PATH)
# The package modules that file imports, directly or not (their packages' __init__.py
# files come along). Only these travel in a model folder's code/, so the folder, and the
# DVC train stage that writes it, change only when they do: a copy of the whole package
# made every model folder differ from its dvc.lock entry after any edit anywhere.
# tests/model/test_served_modules.py derives the list from the imports.
SERVED_MODULES = (
    "churn.features.segments",
    "churn.model.calibrate",
    "churn.model.churn_model",
    "churn.model.model_files",
    "churn.model.model_record",
    "churn.model.pyfunc",
)


class ChurnPyfunc(PythonModel):
    """``predict`` returns one ``churn_probability`` column for snapshot rows."""

    def __init__(self) -> None:
        self.model: ChurnModel | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.model = read_model_files(
            Path(context.artifacts[BOOSTER_ARTIFACT]), Path(context.artifacts[SPEC_ARTIFACT])
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            raise RuntimeError("the churn model was not loaded (load_context was not called)")
        return self.model.predict(pd.DataFrame(model_input))
