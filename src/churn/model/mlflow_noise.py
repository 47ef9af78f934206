"""MLflow's known noise, silenced one message at a time so real problems still show.

Each of these comes on every run and says nothing a user can act on:

- "Hint: Inferred schema contains integer column(s)": the signature keeps our
  integer columns as integers on purpose (never-missing counts; MLflow would
  refuse int64 input for a double column, see ``tracking.serving_example``);
- "Failed to resolve installed pip version": uv builds the venv without pip, and
  MLflow only wants the version to pin pip in the conda.yaml nobody uses (we
  pass ``pip_requirements`` explicitly);
- pandas 4 deprecation warnings raised by MLflow's own input-example code;
- the "Downloading artifacts" progress bar MLflow draws while it validates the
  input example against the model (a bar per model file in a cron or DVC log);
- its INFO lines ("Validating input example against model signature", "Creating
  initial MLflow database tables"): ``churn`` already keeps the ``mlflow`` logger
  at WARNING, but importing MLflow resets it, so the level is set again here.

The pickle warnings older models brought are gone at the cause: a model is code
plus text files (``churn.model.pyfunc``), so there is nothing to filter for them.
Anything else, warnings of other categories or texts and every MLflow warning or
error log line, passes through unchanged.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# (logger, message start) pairs dropped from MLflow's log.
KNOWN_LOG_LINES = (("mlflow.utils.environment", "Failed to resolve installed pip version"),)
# (category name, message regex, module regex) for warnings.filterwarnings.
KNOWN_WARNINGS = (
    ("UserWarning", r"Hint: Inferred schema contains integer column", r"mlflow\."),
    ("Pandas4Warning", r"Operation with range is deprecated", r"mlflow\."),
)
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_LEVEL_VARIABLE = "MLFLOW_LOGGING_LEVEL"


class _DropKnownLines(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _category(name: str) -> type[Warning] | None:
    """The warning class, None where this pandas has no such class (nothing to filter)."""
    if name == "UserWarning":
        return UserWarning
    import pandas.errors

    found = getattr(pandas.errors, name, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else None


def quiet_mlflow_logger() -> None:
    """Keep the ``mlflow`` logger at WARNING unless the user chose a level.

    ``MLFLOW_LOGGING_LEVEL`` wins, and so does ``churn --debug`` (the root logger at
    DEBUG), so the INFO lines stay one switch away.
    """
    if os.environ.get(_LEVEL_VARIABLE) or logging.getLogger().level == logging.DEBUG:
        return
    logging.getLogger("mlflow").setLevel(logging.WARNING)


@contextmanager
def known_noise_silenced() -> Iterator[None]:
    """Inside: the known warnings, log lines and progress bar above are dropped."""
    filters = [_DropKnownLines(prefix) for _, prefix in KNOWN_LOG_LINES]
    loggers = [logging.getLogger(name) for name, _ in KNOWN_LOG_LINES]
    for logger, log_filter in zip(loggers, filters, strict=True):
        logger.addFilter(log_filter)
    previous_bar = os.environ.get(_PROGRESS_BAR)
    if previous_bar is None:  # the user's own choice stays
        os.environ[_PROGRESS_BAR] = "false"
    try:
        with warnings.catch_warnings():
            for category_name, message, module in KNOWN_WARNINGS:
                category = _category(category_name)
                if category is not None:
                    warnings.filterwarnings("ignore", message, category, module)
            yield
    finally:
        if previous_bar is None:
            os.environ.pop(_PROGRESS_BAR, None)
        for logger, log_filter in zip(loggers, filters, strict=True):
            logger.removeFilter(log_filter)
