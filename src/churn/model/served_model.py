"""MLflow "models from code" entry point; churn itself never imports or runs it.

MLflow copies this file into every model folder churn writes and runs it when
MLflow loads the model (`mlflow models serve`, `mlflow.pyfunc.load_model`,
`spark_udf`): it builds the wrapper, which then reads the booster text and the
JSON spec. Its sha256 is part of the training run's checksum record, so an
edited copy in a model folder is refused by churn's loader too.
"""

from mlflow.models import set_model

from churn.model.pyfunc import ChurnPyfunc

set_model(ChurnPyfunc())
