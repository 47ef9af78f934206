"""The hostile-input suite: every broken or malicious input we know of, through the real CLI.

Each case asserts the exit code, the one-line message, the row accounting
(``rows_in = rows_out + rows_quarantined``) where ingest ran, and that a refusal
leaves the previously published list byte-identical. Inputs are small and built
in the test, so the whole suite stays fast.

Test files here are named ``test_hostile_<area>.py`` (pytest imports test modules
by base name, so they must not clash with tests elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightly_shop import Shop, build_shop, copy_published


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A generated shop, its champion model and one published nightly run (per module)."""
    yield from build_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture
def workspace(shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the published tree, for one test to run against."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_published(shop, tmp_path)
