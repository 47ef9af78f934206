"""Progress on long loops: a bar for a person at a terminal, a few plain lines for a log.

The loops (feature cutoffs, boosting rounds, bootstrap resamples, backtest
steps) only say what they do and how far they are; this module alone decides
how that is shown, from where the log goes (stderr):

* a terminal: a tqdm bar, redrawn in place; log lines print above it;
* anything else (cron, ``dvc repro``, a pipe, a test): plain log lines through
  ``logging`` (logger ``churn.progress``), one when the count crosses each
  ``PLAIN_EVERY_PERCENT`` of the total, at most one per step, so a cron log gets
  no carriage returns or escape codes and at most ~10 lines per loop. Loops
  inside a loop (features and training in each backtest step) stay silent
  there: the outer loop's line per step says enough.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol, TypeVar

log = logging.getLogger("churn.progress")

PLAIN_EVERY_PERCENT = 10

T = TypeVar("T")

_open_tasks = 0  # progress() calls open right now: nested ones only draw on a terminal


class Progress(Protocol):
    """What a loop gets from :func:`progress`: count steps, or wrap its iterable."""

    def advance(self, steps: int = 1) -> None: ...

    def track(self, items: Iterable[T]) -> Iterator[T]: ...


def on_terminal() -> bool:
    """True when stderr is an interactive terminal that can redraw a line.

    A pipe, a file, cron and ``dvc repro`` are not; neither is ``TERM=dumb``
    (Emacs shells and some CI consoles), where a carriage return prints as is.
    """
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def quiet_library_bars() -> None:
    """Off a terminal, keep MLflow's own tqdm bars (artifact downloads while a model is
    logged or loaded) out of the log as well; a value the user set wins."""
    if not on_terminal():
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _sized() -> bool:
    """Whether the terminal on stderr reports its size (columns and rows)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return size.columns > 0 and size.lines > 0


class _Counter:
    """The shared counting; subclasses show it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        self._shown()

    def track(self, items: Iterable[T]) -> Iterator[T]:
        # A step counts once the loop body is done with it, i.e. when the next is asked for.
        for item in items:
            yield item
            self.advance()

    def _shown(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Silent:
    """Counts nothing, shows nothing: the default for code run outside a progress display."""

    def advance(self, steps: int = 1) -> None:
        pass

    def track(self, items: Iterable[T]) -> Iterator[T]:
        return iter(items)


SILENT: Progress = _Silent()


class _Lines(_Counter):
    """Plain log lines: one per PLAIN_EVERY_PERCENT crossed, and one if it stops short."""

    def __init__(self, label: str, total: int, unit: str) -> None:
        super().__init__(total)
        self.label, self.unit = label, unit
        self.started = time.perf_counter()
        self.logged_bucket = 0
        self.logged_done = 0

    def _line(self, note: str = "") -> None:
        self.logged_done = self.done
        log.info(
            "%s: %s/%s %s (%d %%), %.1fs%s",
            self.label,
            f"{self.done:,}",
            f"{self.total:,}",
            self.unit,
            100 * self.done // self.total,
            time.perf_counter() - self.started,
            note,
        )

    def _shown(self) -> None:
        bucket = min(self.done, self.total) * 100 // (self.total * PLAIN_EVERY_PERCENT)
        if bucket > self.logged_bucket:
            self.logged_bucket = bucket
            self._line()

    def close(self) -> None:
        if self.logged_done != self.done and self.done < self.total:
            self._line(", done")  # early stopping, resamples skipped as one-class


class _Bar(_Counter):
    """A tqdm bar on stderr; the outermost one stays on screen when done."""

    def __init__(self, label: str, total: int, unit: str, outermost: bool) -> None:
        from tqdm import tqdm

        super().__init__(total)
        sized = _sized()
        self.bar = tqdm(
            total=total,
            desc=label,
            unit=f" {unit}",
            file=sys.stderr,
            leave=outermost,
            # Follow the window as it is resized. A terminal that reports no size (a bare
            # pty, some CI consoles) would get no bar at all (tqdm draws only within the
            # rows it is told of), so it gets 80 x 24.
            dynamic_ncols=sized,
            ncols=None if sized else 80,
            nrows=None if sized else 24,
            mininterval=0.2,
        )

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


def _redirect_logging() -> AbstractContextManager[Any]:
    """Log lines above the bar instead of through it (only when something logs to the
    console: without a console handler there is nothing to redirect, and adding one
    would start printing records nobody asked for)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    console = [
        h
        for h in logging.root.handlers
        if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr)
    ]
    return logging_redirect_tqdm() if console else nullcontext()


@contextmanager
def progress(label: str, total: int, unit: str) -> Iterator[Progress]:
    """Show how far a loop of ``total`` ``unit`` is, labelled e.g. ``"features"``.

    Cheap enough for a per-iteration call. A loop of one step or none shows
    nothing in plain mode (the stage's own log line covers it).
    """
    global _open_tasks
    outermost = _open_tasks == 0
    shown: _Counter
    redirect: AbstractContextManager[Any] = nullcontext()
    if on_terminal() and total > 0:
        shown = _Bar(label, total, unit, outermost)
        if outermost:
            redirect = _redirect_logging()
    elif outermost and total > 1:
        shown = _Lines(label, total, unit)
    else:
        shown = _Counter(total)
    _open_tasks += 1
    try:
        with redirect:
            yield shown
            shown.close()  # the bar's last draw, or the line of a loop that stopped short
    finally:
        _open_tasks -= 1
        if isinstance(shown, _Bar):
            shown.close()  # also when the loop raised (closing twice is harmless)


def tracked(items: Iterable[T], label: str, unit: str, total: int) -> Iterator[T]:
    """``items`` with their progress shown: ``for x in tracked(xs, "backtest", "steps", n)``.

    A step counts once the loop body is done with it. The display closes when
    the loop ends, breaks or raises (the generator is closed with it).
    """
    with progress(label, total, unit) as shown:
        yield from shown.track(items)


def lightgbm_callback(bar: Progress) -> Callable[[Any], None]:
    """A LightGBM ``callbacks=`` entry advancing ``bar`` once per boosting round.

    Ordered before early stopping (whose exception ends the round), so the
    round that triggers the stop is counted too.
    """

    def advance(env: Any) -> None:
        bar.advance()

    advance.order = 1  # type: ignore[attr-defined]  # LightGBM sorts callbacks by this
    return advance
