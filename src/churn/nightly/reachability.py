"""The nightly job's MLflow calls, bounded in time, and one quick probe before the work.

MLflow's HTTP client retries a request 7 times with a backoff factor of 2 and a
120 s timeout: against a tracking server that is down, one call takes about 4.5
minutes before it raises. A cron job must neither sit that long nor find out
only after an hour of ingest and scoring. So for the job's duration the
``MLFLOW_HTTP_REQUEST_*`` variables are set to the ``nightly.mlflow_*`` bounds
(an operator's own setting of them wins), and the store is probed once at the
start: a model from the registry then fails at once (exit 14), while a run with
a local model folder goes ahead and only skips the MLflow record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import urlsplit, urlunsplit

# Model URIs that are resolved through the tracking server or its registry.
_SERVER_SCHEMES = ("models", "runs", "mlflow-artifacts")
# urllib3 logs one WARNING line per retry; the job reports the outcome in one line itself.
_RETRY_LOGGER = "urllib3.connectionpool"


@contextlib.contextmanager
def bounded(timeout_seconds: int, retries: int) -> Iterator[None]:
    """Every MLflow HTTP call inside takes at most about ``(retries + 1) * timeout``
    seconds plus a backoff of 1, 2, 4... seconds between tries."""
    settings = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    retry_log = logging.getLogger(_RETRY_LOGGER)
    saved_level = retry_log.level
    for name, value in settings.items():
        os.environ.setdefault(name, value)
    retry_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        retry_log.setLevel(saved_level)
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def needs_server(model_uri: str) -> bool:
    """Whether loading ``model_uri`` goes through the tracking server or registry."""
    return urlsplit(model_uri).scheme in _SERVER_SCHEMES


def tracking_problem() -> str | None:
    """None when the tracking store answers; else one line saying where and why not."""
    import mlflow
    from mlflow.tracking import MlflowClient

    return _probe(
        "MLflow tracking store",
        mlflow.get_tracking_uri(),
        lambda: MlflowClient().search_experiments(max_results=1),
    )


@contextlib.contextmanager
def tracking_probe(wanted: bool, at_once: bool) -> Iterator[Callable[[], str | None]]:
    """How to get :func:`tracking_problem`'s answer (None when not ``wanted``).

    ``at_once``: probed before anything else (a registry model needs the answer before
    any work). Otherwise (a local model folder) the probe runs on a thread beside the
    job's first steps: its answer is needed only to record the run, and opening MLflow's
    store (importing SQLAlchemy and its migrations, connecting) took seconds of the job
    (issue 20). The thread is waited for before this block is left, so inside the
    caller's ``bounded`` settings, whatever happens in the job.
    """
    if not wanted:
        yield lambda: None
        return
    if at_once:
        problem = tracking_problem()
        yield lambda: problem
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-probe") as pool:
        answer = pool.submit(tracking_problem)
        try:
            yield answer.result
        finally:
            wait([answer])


def registry_problem() -> str | None:
    """None when the model registry answers; else one line saying where and why not."""
    import mlflow
    from mlflow.tracking import MlflowClient

    return _probe(
        "MLflow model registry",
        mlflow.get_registry_uri(),
        lambda: MlflowClient().search_registered_models(max_results=1),
    )


def _probe(what: str, uri: str, call: Callable[[], object]) -> str | None:
    try:
        call()
    except Exception as exc:  # any failure means "cannot use it now"; say why in one line
        return f"the {what} at {redact(uri)} is unavailable ({describe(exc)})"
    return None


def describe(exc: BaseException) -> str:
    """The root cause of an MLflow/requests failure in a few words, not MLflow's
    three-line chain of wrapped exceptions."""
    text = " ".join(str(e) for e in _chain(exc))
    n = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")) + 1
    tries = f"{n} {'try' if n == 1 else 'tries'}"
    if found := re.search(r"\[Errno -?\d+\] ([^'\"\)\]]+)", text):
        return f"{found.group(1).strip()}, {tries}"
    if "timed out" in text.lower() or "timeout" in text.lower():
        seconds = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "?")
        return f"no answer within {seconds} s, {tries}"
    if found := re.search(r"too many (\d+) error responses", text):
        return f"HTTP {found.group(1)}, {tries}"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first[:200]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def redact(uri: str) -> str:
    """``uri`` without a password, fit for a log line."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
