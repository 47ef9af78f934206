"""The page's Jinja2 templates: autoescaped, strict, and able to include the report's own
"Did it work?" section (churn.scoring's template), so the page words results as the report does."""

from __future__ import annotations

from functools import cache

import jinja2

from churn.scoring.report import template_environment


@cache
def environment() -> jinja2.Environment:
    """One environment per process: the page's templates, then the report's."""
    return template_environment("churn.web")


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
