"""One nightly run at a time: an exclusive ``flock`` on a file beside the outputs.

cron does not know a run is still going when the next one starts, and two runs
publishing into the same tree would race on the ``latest.json`` pointer. The
kernel releases a ``flock`` when its process dies, however it dies, so a crashed
run never leaves a stale lock to clean up by hand (unlike a pid file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from churn.errors import UserError

LOCK_NAME = ".lock"


class RunLockedError(UserError):
    """Another nightly run holds the lock on this output tree."""

    exit_code = 10


@contextlib.contextmanager
def exclusive_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` for the duration; raise ``RunLockedError`` at once if it is taken."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"another nightly run (pid {holder}) holds {path}; not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
