"""Ad-hoc names: readable, safe as file names, and never a tracked path."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.adhoc import derived_path, export_parts, model_part, refuse_tracked, slug
from churn.errors import UserError


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("At risk", "at-risk"),
        ("Can't lose them", "cant-lose-them"),
        ("Personal call", "personal-call"),
        ("../../etc/passwd", "etc-passwd"),  # no way out of the folder
        ("Ünïcode  spaces\t", "n-code-spaces"),
        ("", "-"),
    ],
)
def test_slug_keeps_a_name_part_to_safe_characters(text: str, part: str) -> None:
    assert slug(text) == part


def test_model_part_names_the_registry_model_or_the_folder() -> None:
    assert model_part("models:/churn-classifier@champion") == "churn-classifier@champion"
    assert model_part("models:/churn-classifier/3") == "churn-classifier-3"
    assert model_part("runs:/ab12/model") == "runs-ab12-model"
    assert len(model_part("/very/" + "deep/" * 40 + "model")) <= 48


def test_export_parts_follow_the_filter_order_and_join_repeated_values() -> None:
    given = {"top_n": 50, "bands": ["high"], "segments": ["At risk", "Lost"], "min_value": 200.0}
    assert export_parts(given, "2026-09-01") == [
        "as_of=2026-09-01",
        "segment-at-risk+lost",
        "band-high",
        "min-value-200",
        "top-50",
    ]
    assert export_parts({}, None) == ["adhoc"]
    tracked = Path("data/exports/retention_targets.csv")
    assert derived_path(tracked, ["band-high"]) == tracked.with_name(
        "retention_targets.band-high.csv"
    )


def test_a_path_inside_a_tracked_folder_is_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "models/churn_model"
    with pytest.raises(UserError, match=r"would overwrite .*churn_model, which the pipeline"):
        refuse_tracked(model_dir / "x" / ".." / "report.html", [model_dir])
    assert refuse_tracked(tmp_path / "models/other.html", [model_dir]) == (
        tmp_path / "models/other.html"
    )
