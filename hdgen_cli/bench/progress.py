"""Progress over a whole bench grid, with an ETA, on stderr: a rich bar on a terminal, one plain
line per finished run when piped (never wrapped). The ETA is the mean time of the runs this
process has finished, times the runs left."""

from __future__ import annotations

import sys
import time

from rich.console import Console

from hdgen_cli.progress import bar, clock


class GridProgress:
    def __init__(self, names: list[str], quiet: bool = False):
        self.total, self.quiet = len(names), quiet
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.finished, self.worked, self.spent = 0, 0, 0.0
        self._bar = self._task = None
        self._t = time.perf_counter()

    def __enter__(self):
        if not self.quiet and self.console.is_terminal:
            self._bar = bar(self.console, "bench {task.description}")
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()
        return False

    def _line(self, text: str) -> None:
        if not self.quiet:
            if self._bar:
                self._bar.console.print(text)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

    def note(self, text: str) -> None:
        self._line(f"bench: {text}")

    def start(self, name: str) -> None:
        self._t = time.perf_counter()
        if self._bar:
            self._bar.update(self._task, description=name)

    def done(self, name: str, skipped: bool = False) -> None:
        self.finished += 1
        took = time.perf_counter() - self._t
        if not skipped:
            self.worked += 1
            self.spent += took
        left = self.total - self.finished
        eta = f", ETA {clock(self.spent / self.worked * left)}" if self.worked and left else ""
        what = "already done, skipped" if skipped else f"done in {clock(took)}"
        if self._bar:
            self._bar.update(self._task, advance=1)
        self._line(f"bench: {self.finished}/{self.total} {name} {what}{eta}")
