"""Start the page: check the address and token, bind, then serve until interrupted.

The socket is bound here, before uvicorn starts, so a port in use or an address this
machine does not have is one line (`churn: error: ...`), not a uvicorn traceback;
``--port 0`` takes a free port, and the address actually bound is logged.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import uvicorn

from churn.config import Params
from churn.errors import UserError
from churn.web.access import required_token
from churn.web.app import build_app
from churn.web.source import check_source

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or one line saying why not."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a port number (0-65535; 0 picks a free one)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port,"
            " or a --host this machine has"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def serve(
    params: Params,
    host: str,
    port: int,
    token: str | None,
    announce: Callable[[str], None] = log.info,
) -> None:
    """Serve the page until Ctrl-C; refuses a non-loopback host without a token."""
    needed = required_token(host, token)
    source = check_source(params)
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    announce(
        f"serve: the list from the {source.label} on http://{shown_host}:{bound_port}/"
        + (" (open it with ?token=<your token>)" if needed else "")
        + "; Ctrl-C stops it"
    )
    config = uvicorn.Config(
        build_app(params, needed),
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
