"""Shared fixtures: small, fast versions of the real inputs."""

from __future__ import annotations

import os
from pathlib import Path

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
