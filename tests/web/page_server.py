"""Running the page for tests: a free loopback port, waiting for it to answer, and the
app in a thread of the test process (for tests that change its params or token)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import uvicorn

from churn.config import Params
from churn.web.app import build_app
from churn.web.server import bind

STARTUP_SECONDS = 120  # a loaded 2-core machine takes a while to import pandas and MLflow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"churn serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 behind a token)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {STARTUP_SECONDS} s")


@contextlib.contextmanager
def serving(params: Params, token: str | None) -> Iterator[str]:
    """The same app in a thread of this process, on a free loopback port."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(build_app(params, token), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_for(f"{url}/report")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
