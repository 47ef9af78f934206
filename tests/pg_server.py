"""A throwaway PostgreSQL server for the database-source tests: initdb + pg_ctl in a
temporary folder, listening on 127.0.0.1 on a free port, password auth over TCP.

PostgreSQL refuses to run as root, so under root (CI containers) the server runs as
the ``postgres`` user Debian's package creates (``runuser``), owning its data folder.
Missing binaries are a skip on a laptop and a failure when ``CI`` is set: `.ci/run`
installs Debian's ``postgresql`` package.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "churn"
PASSWORD = "s3cret-pw"  # the tests assert it never shows in a message
DATABASE = "shop"


@dataclass(frozen=True)
class PgServer:
    port: int
    url: str  # postgresql://churn@127.0.0.1:<port>/shop, no password


def _bindir() -> Path | None:
    """Where initdb lives: pg_config's bindir, else the newest Debian cluster version."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(found.stdout.strip())
    candidates += sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def require_bindir() -> Path:
    found = _bindir()
    if found is not None:
        return found
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL is not installed but CI is set (.ci/run installs it)")
    pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str]) -> None:
    proc = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{argv[0]} failed:\n{proc.stdout}\n{proc.stderr}"


@contextmanager
def running_server() -> Iterator[PgServer]:
    """initdb, start, create the database; stop (immediate) and remove on exit."""
    bindir = require_bindir()
    import psycopg  # here: without libpq on the host the module still imports, and skips

    # Not under pytest's tmp folder: that one is private to root, the server user
    # could not reach its data folder.
    folder = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    data, pwfile = folder / "data", folder / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    _run(
        [
            str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
        ]
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
          str(folder / "log"), "start"])  # fmt: skip
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres",
            autocommit=True,
        ) as con:  # fmt: skip
            con.execute(f"CREATE DATABASE {DATABASE}")
        yield PgServer(port, f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}")
    finally:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)
