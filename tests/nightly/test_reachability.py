"""Bounded MLflow calls and the probe, against a real port nothing listens on."""

from __future__ import annotations

import os
import socket
import threading

import mlflow
import pytest

from churn.nightly import reachability

BOUNDS = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


def _closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (nothing listens on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bounds_apply_inside_and_an_operators_own_setting_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in BOUNDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    with reachability.bounded(10, 2):
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_probe_says_where_and_why_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BOUNDS:
        monkeypatch.delenv(name, raising=False)
    url = f"http://user:secret@127.0.0.1:{_closed_port()}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        with reachability.bounded(5, 0):
            problem = reachability.tracking_problem()
            registry = reachability.registry_problem()
    finally:
        mlflow.set_tracking_uri(previous)
    assert problem is not None and "\n" not in problem
    assert problem.startswith("the MLflow tracking store at http://user:***@127.0.0.1:")
    assert problem.endswith("is unavailable (Connection refused, 1 try)")
    assert "secret" not in problem
    assert registry is not None and registry.startswith("the MLflow model registry at")


def test_which_models_need_the_server() -> None:
    assert reachability.needs_server("models:/churn-classifier@champion")
    assert reachability.needs_server("models:/churn-classifier/3")
    assert reachability.needs_server("runs:/abc/model")
    assert not reachability.needs_server("/srv/models/churn_model")
    assert not reachability.needs_server("models/churn_model")
    assert not reachability.needs_server("file:///srv/models/churn_model")


def test_the_probe_for_a_local_model_runs_beside_the_job_and_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20: a local model's run needs the probe's answer only to record itself, so the
    probe (seconds to open MLflow's store) runs on a thread while the job works; the
    answer is the same, and the thread is done, within the bounds, when the block ends.
    A registry model is probed before anything else, on the caller's thread."""
    for name in BOUNDS:
        monkeypatch.delenv(name, raising=False)
    url = f"http://127.0.0.1:{_closed_port()}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    threads: list[str] = []
    real = reachability.tracking_problem

    def probe() -> str | None:
        threads.append(threading.current_thread().name)
        return real()

    monkeypatch.setattr(reachability, "tracking_problem", probe)
    try:
        with reachability.bounded(5, 0):
            with reachability.tracking_probe(True, at_once=False) as beside:
                pass  # the job's steps; the answer is not asked for
            assert threads and threads[0].startswith("mlflow-probe")
            later = beside()
            with reachability.tracking_probe(True, at_once=True) as first:
                assert threads[-1] == threading.current_thread().name
            with reachability.tracking_probe(False, at_once=False) as unwanted:
                pass
    finally:
        mlflow.set_tracking_uri(previous)
    assert later is not None and later == first()
    assert later.endswith("is unavailable (Connection refused, 1 try)")
    assert unwanted() is None and len(threads) == 2
