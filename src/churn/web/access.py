"""Who may open the page: anyone on this machine, or whoever holds the token.

On a loopback address (127.0.0.1, ::1, localhost) only this machine can connect,
so no token is needed. On any other address the list (names, emails, values) is
reachable from the network, so the server refuses to start without a token
(``--token`` or ``CHURN_SERVE_TOKEN``), and every request must carry it: as
``?token=`` once (the page then keeps it in an HttpOnly, same-site cookie, so links
and downloads work), as a cookie, or as ``Authorization: Bearer``. A request
without it gets 401, one with a wrong token 403.

Without a token, requests must also name a loopback host (``Host: 127.0.0.1:8050``,
``localhost``): a web page elsewhere cannot read the list by pointing its own domain
at 127.0.0.1 (DNS rebinding), because its requests carry its domain as the host.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from churn.errors import UserError

TOKEN_ENV = "CHURN_SERVE_TOKEN"
COOKIE = "churn_serve_token"
MIN_TOKEN_LENGTH = 16  # a short token on a network address is guessable


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def required_token(host: str, given: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The token requests must carry (None: none needed), from ``--token`` or the env.

    Refuses a non-loopback ``host`` without one, and a token too short to be secret."""
    token = given if given is not None else env.get(TOKEN_ENV) or None
    if token is None:
        if is_loopback(host):
            return None
        raise UserError(
            f"--host {host} makes the list reachable from other machines: give --token or set"
            f" {TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} characters), or bind 127.0.0.1"
        )
    if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise UserError(
            f"the serve token must be at least {MIN_TOKEN_LENGTH} characters without spaces"
            " at either end (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return token


class TokenGate:
    """ASGI middleware: 401 without the token, 403 with a wrong one; ``?token=`` right
    sets the cookie and redirects to the same address without it (off the history)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = _presented(request)
        if given is None:
            response: Response = PlainTextResponse(
                "401: this page needs its token (open the address with ?token=...)", 401
            )
        elif not hmac.compare_digest(given.encode(), self.token.encode()):
            response = PlainTextResponse("403: wrong token", 403)
        elif "token" in request.query_params:
            response = _remember(request, given)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _presented(request: Request) -> str | None:
    """The token the request carries: query, then bearer header, then cookie."""
    if "token" in request.query_params:
        return request.query_params["token"]
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def _remember(request: Request, token: str) -> Response:
    response = RedirectResponse(str(request.url.remove_query_params("token")), 303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


class LoopbackHostGate:
    """ASGI middleware for a server without a token: 421 unless the Host header names a
    loopback address (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _loopback_host(Request(scope).headers.get("host")):
            response = PlainTextResponse(
                "421: open this page as http://127.0.0.1:<port>/ or http://localhost:<port>/",
                421,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _loopback_host(header: str | None) -> bool:
    if not header:
        return False
    try:
        name = urlsplit(f"//{header}").hostname
    except ValueError:
        return False
    return name is not None and is_loopback(name)
