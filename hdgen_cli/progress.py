"""Progress with an ETA on stderr for the long loops (sampling, attacks, OOD scoring, classifying).

The engine marks its loops with `stage(name, total, unit)` and advances the stage it gets back;
nothing is shown unless a command has opened `reporting()` around its work. On a terminal that
is a rich bar; piped, one plain line at most every `every` seconds (never wrapped). Only the
outermost open stage is shown: a sampler running inside an attack advances nothing, the attack's
own stage does. `reporting(quiet=True)`, and library use without `reporting`, show nothing.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def clock(seconds: float) -> str:
    """1m05s, or 1h02m past an hour."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


def bar(console: Console, label: str = "{task.description}", transient: bool = False) -> Progress:
    """The rich progress bar every hdgen progress display uses: label, bar, done/total, elapsed, ETA."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, transient=transient)


class _Null:
    done = 0

    def advance(self, k: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Stage:
    """One loop of `total` units; `advance` after each. Piped lines say done/total, elapsed and ETA."""

    def __init__(self, reporter: "_Reporter", name: str, total: int, unit: str):
        self.reporter, self.name, self.total, self.unit = reporter, name, max(int(total), 1), unit
        self.done, self._t0, self._last = 0, time.perf_counter(), time.perf_counter()
        self._task = None

    def __enter__(self):
        bar = self.reporter.bar
        if bar is not None:
            self._task = bar.add_task(f"{self.name} ({self.unit})" if self.unit else self.name, total=self.total)
        return self

    def __exit__(self, *exc):
        self.reporter.stage = None
        if self.reporter.bar is not None and self._task is not None:
            self.reporter.bar.remove_task(self._task)
        elif exc[0] is None and time.perf_counter() - self._t0 >= self.reporter.every:
            self._line()  # a piped stage long enough to have shown progress also says it ended
        return False

    def advance(self, k: int = 1) -> None:
        self.done = min(self.done + k, self.total)
        if self.reporter.bar is not None:
            self.reporter.bar.update(self._task, completed=self.done)
        elif time.perf_counter() - self._last >= self.reporter.every:
            self._line()

    def set_total(self, total: int) -> None:
        """A new estimate of the total (a loop that learns its length as it runs)."""
        self.total = max(int(total), self.done, 1)
        if self.reporter.bar is not None:
            self.reporter.bar.update(self._task, total=self.total)

    def _line(self) -> None:
        self._last = time.perf_counter()
        spent = self._last - self._t0
        eta = f", ETA {clock(spent / self.done * (self.total - self.done))}" if 0 < self.done < self.total else ""
        unit = f" {self.unit}" if self.unit else ""
        self.reporter.write(f"{self.name}: {self.done}/{self.total}{unit}, {clock(spent)}{eta}")


class _Reporter:
    def __init__(self, every: float):
        self.every = every
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.bar: Progress | None = None
        self.stage: Stage | None = None

    def write(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


_active: ContextVar[_Reporter | None] = ContextVar("hdgen_progress", default=None)


@contextmanager
def reporting(quiet: bool = False, every: float = 10.0):
    """Show the stages opened inside this block (a bar on a terminal, else a line every `every` s)."""
    if quiet:
        yield
        return
    reporter = _Reporter(every)
    if reporter.console.is_terminal:
        reporter.bar = bar(reporter.console, transient=True)  # a finished command leaves only its results
        reporter.bar.start()
    token = _active.set(reporter)
    try:
        yield
    finally:
        _active.reset(token)
        if reporter.bar is not None:
            reporter.bar.stop()


def stage(name: str, total: int, unit: str = ""):
    """A context manager whose `advance(k)` reports progress; a no-op outside `reporting` or when
    another stage is already open (the outer loop owns the display)."""
    reporter = _active.get()
    if reporter is None or reporter.stage is not None:
        return _Null()
    reporter.stage = Stage(reporter, name, total, unit)
    return reporter.stage


def shown() -> bool:
    """Whether a command is showing progress (worth measuring a pace for an estimate)."""
    return _active.get() is not None


def note(text: str) -> None:
    """One line on stderr inside `reporting` (e.g. an up-front time estimate); silent otherwise."""
    reporter = _active.get()
    if reporter is not None:
        if reporter.bar is not None:
            reporter.bar.console.print(text)
        else:
            reporter.write(text)
