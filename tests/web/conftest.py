"""One small real project per test session, served by the real `churn serve`.

``project`` builds it once (tests/web/served_project.py: the read-out of
`churn outcomes`, the export stage's list and the report stage's HTML). ``page_url`` runs the
real command (`python -m churn serve`) on 127.0.0.1 at a free port over it;
page_server.serving runs the same app in this process, for tests that change its token.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from page_server import free_port, wait_for
from served_project import build_project

from churn.config import Params, load_params


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test run: pytest-xdist workers share the folder under a file lock
    (the tests only read it), so the project is built once, not once a worker."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    folder = shared / "served-project"
    with FileLock(str(shared / "served-project.lock")):
        if not (folder / "done").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(folder)
                patch.delenv("MLFLOW_TRACKING_URI", raising=False)
                build_project()
            (folder / "done").touch()
    return folder


@pytest.fixture(scope="session")
def project_params(project: Path) -> Params:
    params = load_params(project / "params.yaml")
    paths = {k: project / v for k, v in params.paths.model_dump().items()}
    nightly = params.nightly.model_copy(update={"output_root": project / "data/nightly"})
    return params.model_copy(
        update={"paths": params.paths.model_copy(update=paths), "nightly": nightly}
    )


@pytest.fixture(scope="session")
def page_url(project: Path) -> Iterator[str]:
    """The real command in its own process, in the project folder."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "CHURN_SERVE_TOKEN")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "churn", "serve", "--port", str(port)], cwd=project, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/report", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
