"""Shared fixtures: small, fast versions of the real inputs."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from churn.config import GenerateConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# MLflow and DVC must never phone home or write into the developer's store from tests.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def small_shop_config() -> GenerateConfig:
    """A shop small enough for a unit test but with every kind of customer in it."""
    return GenerateConfig(seed=3, n_customers=3_000)


@pytest.fixture(scope="module")
def shared_spark() -> Iterator[Any]:
    """The process's local Spark session, started by the first module that needs one.

    Starting a session (a JVM, the churn package shipped to it) costs 10-30 s here,
    and Spark keeps one per process anyway; the modules that test on Spark reuse it
    instead of each starting and stopping their own (a module that must have a fresh
    one, tests/model/test_served_model.py, stops it; the next module starts another).
    """
    pytest.importorskip("pyspark")
    from churn.features.backend import DEFAULT_SPARK_MASTER, spark_session

    # py4j says goodbye at interpreter exit, after pytest closed the stream the in-process
    # CLI tests bound logging to; keep it quiet so the run does not end on a logging error.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from features.test_engines import TEST_SPARK_CONF

    yield spark_session(DEFAULT_SPARK_MASTER, TEST_SPARK_CONF)
