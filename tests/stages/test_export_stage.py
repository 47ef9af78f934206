"""churn.stages.export: the filters of one export, from its options and params."""

from __future__ import annotations

from churn.config import ExportConfig
from churn.stages.export import ExportRequest, param_filters


def test_options_override_params_and_the_rest_come_from_params() -> None:
    settings = ExportConfig(top_n=50, segments=("At risk",), bands=("high",))
    filters = param_filters(settings, {"bands": ["medium"], "top_n": None, "segments": []})
    assert (filters.segments, filters.bands, filters.top_n) == (("At risk",), ["medium"], 50)
    # Messages name `export.segments [...]` for these, `--band 'medium'` for the option.
    assert filters.from_params == {"segments", "min_value", "actions", "top_n"}


def test_the_nightly_job_gets_every_filter_from_params() -> None:
    filters = param_filters(ExportConfig(top_n=7, min_value=10.0))
    assert (filters.top_n, filters.min_value, filters.segments) == (7, 10.0, None)
    assert filters.from_params == {"segments", "bands", "min_value", "actions", "top_n"}


def test_any_option_makes_a_one_off_export() -> None:
    assert not ExportRequest({"top_n": None, "segments": []}).ad_hoc
    assert ExportRequest({"top_n": 0}).ad_hoc  # a given 0 is an option (refused later)
    assert ExportRequest({}, formats=["csv"]).ad_hoc
