"""The page's views: the filtered list, one customer, the downloads, the report, the results.

Each request reads the newest list afresh (churn.web.source), so the page follows the
nightly job without a restart. A filter that can only be a typo answers 400 with the
same sentence `churn export` would print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from churn.adhoc import derived_path, export_parts
from churn.config import Params
from churn.errors import UserError
from churn.features.segments import SEGMENTS
from churn.scoring.export import BANDS
from churn.stages.export import contacts_from_transactions
from churn.web import cells
from churn.web.downloads import MEDIA_TYPES, list_bytes
from churn.web.listing import MULTI, SINGLE, Shown, query_filters, shown_list
from churn.web.source import ListSource, latest_source, read_customers, read_targets
from churn.web.templates import render


@dataclass(frozen=True)
class Site:
    """What every view needs: the params the server started with."""

    params: Params

    def source(self) -> ListSource:
        return latest_source(self.params)

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        common = {
            "title": self.params.report.title,
            "source_label": self.source().label,
            "currency": self.params.report.currency,
        }
        return HTMLResponse(render(name, **common, **context), status_code=status)

    def message(self, text: str, status: int) -> HTMLResponse:
        return self.page("message.html.j2", status, message=text)


def _query(request: Request) -> dict[str, list[str]]:
    wanted = (*MULTI, *SINGLE)
    return {k: request.query_params.getlist(k) for k in wanted if k in request.query_params}


def _shown(site: Site, request: Request) -> Shown:
    filters = query_filters(site.params, _query(request))
    source = site.source()
    targets, customers = read_targets(source), read_customers(site.params)
    as_of = pd.Timestamp(targets["as_of"].iloc[0]).date() if len(targets) else None
    contacts = contacts_from_transactions(site.params, customers, as_of)
    return shown_list(targets, customers, filters, contacts)


def list_page(site: Site, request: Request) -> Response:
    query = _query(request)
    chosen = {
        **{field: query.get(name, []) for name, field in MULTI.items()},
        "min_value": next(iter(query.get("min_value", [])), ""),
        "top": next(iter(query.get("top", [])), ""),
    }
    choices = {
        "segments": SEGMENTS,
        "bands": BANDS,
        "actions": list(site.params.targeting.actions),
    }
    context: dict[str, Any] = {"chosen": chosen, "choices": choices, "error": None, "shown": None}
    try:
        shown = _shown(site, request)
    except UserError as exc:
        return site.page("list.html.j2", 400, **{**context, "error": str(exc)})
    headers = cells.shown_headers(shown.rows)
    encoded = urlencode([(k, v) for k, values in query.items() for v in values])
    return site.page(
        "list.html.j2",
        **{
            **context,
            "shown": shown,
            "headers": headers,
            "numeric": cells.NUMERIC,
            "id_header": cells.ID_HEADER,
            "band_header": cells.BAND_HEADER,
            "rows": cells.display_rows(shown.rows, headers, site.params.report.currency),
            "query": f"?{encoded}" if encoded else "",
        },
    )


def download(site: Site, request: Request) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in MEDIA_TYPES:
        return site.message(f"no download as {fmt!r}: choose csv or xlsx", 404)
    try:
        shown = _shown(site, request)
    except UserError as exc:
        return site.message(str(exc), 400)
    given = {f: getattr(shown.filters, f) for f in (*MULTI.values(), *SINGLE.values())}
    given = {f: v for f, v in given.items() if f not in shown.filters.from_params}
    name = derived_path(
        site.params.paths.targets.with_suffix(f".{fmt}"),
        export_parts(given, shown.summary["as_of"]),
    ).name
    return Response(
        list_bytes(shown.rows, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
