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
