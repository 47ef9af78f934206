"""The page's Jinja2 templates: autoescaped, strict, and able to include the report's own
"Did it work?" section (churn.scoring's template), so the page words results as the report does."""

from __future__ import annotations

from functools import cache

import jinja2

from churn.scoring.report import fmt_count, fmt_money, fmt_pct


@cache
def environment() -> jinja2.Environment:
    """One environment per process; every value from data is escaped (autoescape)."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("churn.web", "templates"),
                jinja2.PackageLoader("churn.scoring", "templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = fmt_count
    env.filters["pct"] = fmt_pct
    env.filters["money"] = fmt_money
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
