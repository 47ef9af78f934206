"""The scoring tests share one small real trained model, built once per test session."""

from __future__ import annotations

import pytest
from trained_model import Trained, build_trained


@pytest.fixture(scope="session")
def trained() -> Trained:
    return build_trained()
