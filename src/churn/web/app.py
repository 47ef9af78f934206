"""The Starlette application: routes, the token gate, and errors as one readable sentence."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from churn.config import Params
from churn.errors import UserError
from churn.web.access import LoopbackHostGate, TokenGate
from churn.web.detail import customer_page, report_page, results_page
from churn.web.pages import Site, download, list_page

View = Callable[[Site, Request], Response]


def build_app(params: Params, token: str | None) -> Starlette:
    """The page over the latest list; with ``token`` every request must carry it, without
    one every request must name a loopback host."""
    site = Site(params)

    def bound(view: View) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return view(site, request)
            except UserError as exc:  # e.g. a list file that went missing: say so, in a page
                return site.message(str(exc), 400)

        return endpoint

    routes = [
        Route("/", bound(list_page)),
        Route("/download.{fmt}", bound(download)),
        Route("/customer/{customer_id:path}", bound(customer_page)),
        Route("/report", bound(report_page)),
        Route("/results", bound(results_page)),
    ]
    gate = Middleware(TokenGate, token=token) if token is not None else Middleware(LoopbackHostGate)
    middleware = [gate]
    return Starlette(routes=routes, middleware=middleware)
