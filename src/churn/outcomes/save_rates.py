"""Measured save rates, shrunk toward the assumed ones, and the rates a list uses.

**Shrinkage.** A control group of a few hundred measures a save rate only to within
+-15 points, so the measured rate alone would swing the next list's budget from
campaign to campaign. Each action's rate gets a Beta prior centred on the assumed
rate (``targeting.actions.<a>.save_rate``) worth ``outcomes.prior_strength``
would-be churners, and the measurement enters as a binomial with the same
information as the estimate: its effective number of would-be churners is
``s0 (1 - s0) / Var(s)`` (Var from the delta method on the churn ratio, the same
variance as its 95 % interval; the binomial variance taken at the assumed rate s0,
kept within 5-95 %, so a measured rate near 0 still carries its information).
The posterior is Beta(k s0 + n s, k (1 - s0) + n (1 - s)):
its mean is the rate used, its 2.5 / 97.5 % quantiles the interval. The Beta lives
on [0, 1], so a measured rate below 0 (contact hurt) enters as 0. Strong evidence
overrides the prior; a weak measurement leaves the assumed rate nearly as it was.

The rates a list then uses are chosen by churn.outcomes.in_effect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from churn.config import TargetingConfig
from churn.outcomes import intervals
from churn.outcomes.readout import Measurement

_EDGE = 1e-3  # keeps Beta parameters positive for rates of exactly 0 or 1
_INFO_FLOOR = 0.05


def shrink(assumed: float, measured: Measurement, prior_strength: float) -> dict[str, float | None]:
    """Posterior mean and 95 % interval of one action's save rate (see the module docstring)."""
    variance = float(
        intervals.save_rate_variance(
            np.array(measured.churned_contacted),
            np.array(measured.n_contacted),
            np.array(measured.churned_control),
            np.array(measured.n_control),
        )
    )
    s0 = float(np.clip(assumed, _EDGE, 1 - _EDGE))
    s = measured.save_rate
    if s is None or not np.isfinite(variance) or variance <= 0:
        n_eff, s = 0.0, 0.0
    else:
        s = float(np.clip(s, _EDGE, 1 - _EDGE))
        # binomial information at a rate away from 0 and 1: a measured rate near 0
        # must not count as no information (s (1 - s) / Var would vanish there)
        centre = float(np.clip(s0, _INFO_FLOOR, 1 - _INFO_FLOOR))
        n_eff = centre * (1 - centre) / variance
    alpha = prior_strength * s0 + n_eff * s
    beta = prior_strength * (1 - s0) + n_eff * (1 - s)
    if alpha + beta <= 0:  # no prior and no measurement
        return {"save_rate": assumed, "ci_low": None, "ci_high": None, "effective_churners": 0.0}
    posterior = stats.beta(max(alpha, _EDGE), max(beta, _EDGE))
    return {
        "save_rate": round(float(alpha / (alpha + beta)), 6),
        "ci_low": round(float(posterior.ppf(0.025)), 6),
        "ci_high": round(float(posterior.ppf(0.975)), 6),
        "effective_churners": round(n_eff, 1),
    }


def measured_save_rates(
    by_action: dict[str, Measurement],
    targeting: TargetingConfig,
    prior_strength: float,
    campaigns: list[str],
) -> dict[str, Any]:
    """The content of ``paths.save_rates``: per action, measured and shrunk rates."""
    actions: dict[str, Any] = {}
    for name, measured in sorted(by_action.items()):
        assumed = targeting.actions[name].save_rate if name in targeting.actions else 0.0
        actions[name] = {
            "assumed": assumed,
            "measured": measured.save_rate,
            "measured_ci_low": measured.save_rate_ci_low,
            "measured_ci_high": measured.save_rate_ci_high,
            "n_contacted": measured.n_contacted,
            "n_control": measured.n_control,
            **shrink(assumed, measured, prior_strength),
        }
    return {"prior_strength": prior_strength, "campaigns": campaigns, "actions": actions}
