"""The read-out the report shows: metrics/outcomes.json as the report's plain input.

The report (churn.scoring, a layer below) may not import the outcomes package, so
`churn report` and the nightly job call :func:`readout_for_report` and hand the
result in. The file is optional: without it (no campaign measured yet) the report
has no "Did it work?" section. A file that is there but not a read-out of this
version fails with one line, rather than quietly hiding the section.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from churn.errors import UserError
from churn.scoring.did_it_work import CampaignReadout, Effect

log = logging.getLogger(__name__)

EFFECT_KEYS = tuple(f.name for f in fields(Effect))


def readout_for_report(path: Path, min_control: int) -> CampaignReadout | None:
    """The read-out in ``path`` (``paths.outcomes_metrics``), or None when there is none.

    ``min_control`` is ``outcomes.min_control``: a smaller control group is reported
    as too small to tell, as targeting never uses a save rate measured on one.
    """
    if not path.is_file():
        log.info("report: no campaign read-out in %s (`churn outcomes` measures one)", path)
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        return CampaignReadout(
            data_end=dt.date.fromisoformat(metrics["data_end"]),
            campaigns=tuple(dt.date.fromisoformat(d) for d in metrics["campaigns"]),
            pooled=_effect(metrics),
            by_action={str(k): _effect(v) for k, v in metrics["by_action"].items()},
            min_control=min_control,
            pooled_over=str(metrics.get("pooled_over", "closed campaigns")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path} is not a read-out of this version of `churn outcomes` ({exc!r});"
            " rerun `churn outcomes`, or remove the file"
        ) from exc


def _effect(entry: dict[str, Any]) -> Effect:
    missing = [k for k in EFFECT_KEYS if k not in entry]
    if missing:
        raise KeyError(", ".join(missing))
    return Effect(**{k: _typed(k, entry[k]) for k in EFFECT_KEYS})


def _typed(key: str, value: Any) -> Any:
    """Each field as the report formats it, so a hand-edited file fails here, in one line."""
    if key in ("n_contacted", "n_control", "observed_days"):
        return int(value)
    if key == "horizon_closed":
        if not isinstance(value, bool):
            raise TypeError(f"{key} is {value!r}, not true or false")
        return value
    if value is None and key != "cost":
        return None
    return float(value)
