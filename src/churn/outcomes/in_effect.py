"""The save rates a list uses: :func:`rates_in_effect`, the one hook of export and nightly.

With ``targeting.save_rates: assumed`` (the default) they are the params' own
(``targeting.actions.<a>.save_rate``). With ``measured`` they are the shrunk rates
`churn outcomes` wrote to ``paths.save_rates`` (churn.outcomes.save_rates), except
for an action measured on fewer than ``outcomes.min_control`` control customers, or
not measured at all, which keeps its assumed rate. Asked for measured rates when
no file exists, the run fails with one line rather than quietly using guesses.
Each list records which rate it used for each action, whence and why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from churn.config import ActionConfig, TargetingConfig
from churn.errors import UserError

log = logging.getLogger(__name__)


def rates_in_effect(
    targeting: TargetingConfig, save_rates: Path, min_control: int
) -> tuple[TargetingConfig, dict[str, Any]]:
    """The targeting config with the save rates this list uses, and the record of them."""
    if targeting.save_rates == "assumed":
        record = {
            name: {"save_rate": a.save_rate, "from": "assumed"}
            for name, a in targeting.actions.items()
        }
        return targeting, {"mode": "assumed", "source": None, "actions": record}
    measured = _read(save_rates)
    actions: dict[str, ActionConfig] = {}
    record = {}
    for name, action in targeting.actions.items():
        entry = measured.get(name)
        why = None
        if entry is None:
            why = "not measured yet"
        elif int(entry.get("n_control", 0)) < min_control:
            why = f"control group {entry.get('n_control', 0)} < outcomes.min_control {min_control}"
        if why is None and entry is not None:
            rate = float(entry["save_rate"])
            actions[name] = action.model_copy(update={"save_rate": rate})
            record[name] = {
                "save_rate": rate,
                "from": "measured",
                "ci_low": entry.get("ci_low"),
                "ci_high": entry.get("ci_high"),
                "n_control": entry.get("n_control"),
            }
        else:
            actions[name] = action
            record[name] = {"save_rate": action.save_rate, "from": "assumed", "why": why}
            log.warning(
                "save rates: %s keeps its assumed rate %s (%s in %s)",
                name,
                action.save_rate,
                why,
                save_rates,
            )
    chosen = targeting.model_copy(update={"actions": actions})
    return chosen, {"mode": "measured", "source": str(save_rates), "actions": record}


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(
            f"targeting.save_rates is 'measured' but {path} does not exist: run `churn outcomes`"
            " after a campaign, or set targeting.save_rates: assumed"
        )
    try:
        actions = json.loads(path.read_text(encoding="utf-8"))["actions"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{path} is not a save-rates file from `churn outcomes` ({exc}); rerun `churn outcomes`"
        ) from exc
    if not isinstance(actions, dict):
        raise UserError(f"{path} has no 'actions' mapping; rerun `churn outcomes`")
    return actions
