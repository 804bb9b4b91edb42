"""Training monitor: JSON-lines metrics log in the run directory plus a live view on stderr.

On a terminal the view is a rich Live table (iteration, loss terms, E(data) vs E(samples), the
gap between them that signals divergence, accuracy, lr, it/s) and the time left at the pace so
far. Elsewhere (CI logs, pipes) it prints one plain line per log record, so stdout stays free for
`--json`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hdgen_cli.progress import clock

COLUMNS = ["iter", "epoch", "loss", "ce", "px", "e_data", "e_samples", "gap", "acc", "lr", "it/s"]


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value or math.isinf(value):
            return str(value)
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


class Monitor:
    def __init__(self, log_path: Path | None, quiet: bool = False, console: Console | None = None,
                 total_iters: int | None = None, tensorboard=None):
        self.console = console or Console(stderr=True, soft_wrap=True)  # piped lines are never wrapped
        self.log_file = open(log_path, "a") if log_path else None
        self.quiet = quiet
        self.live: Live | None = None
        self.last: dict = {}
        self.events: list[str] = []
        self.status = ""  # the divergence guard's state, shown as the live table's title
        self._t0, self._it0 = time.perf_counter(), None
        self.total_iters, self._first = total_iters, None  # (iteration, time) of the first record: the ETA's pace
        self.eta = ""
        self.tensorboard = tensorboard  # a TensorBoardLog mirroring every record, or None

    # -- lifecycle
    def __enter__(self):
        if not self.quiet and self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.stop()
        if self.log_file:
            self.log_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()

    # -- records
    def write(self, record: dict) -> None:
        """Append one record (any JSON-able dict) to metrics.jsonl."""
        if self.log_file:
            self.log_file.write(json.dumps(record) + "\n")
            self.log_file.flush()

    def step(self, record: dict) -> None:
        """A training-progress record: logged, and shown live."""
        now = time.perf_counter()
        if self._it0 is not None and record["iter"] > self._it0[0]:
            record["it/s"] = (record["iter"] - self._it0[0]) / max(now - self._it0[1], 1e-9)
        self._it0 = (record["iter"], now)
        self._first = self._first or (record["iter"], now)
        done = record["iter"] - self._first[0]
        if self.total_iters and done > 0:
            self.eta = clock((now - self._first[1]) / done * max(self.total_iters - record["iter"], 0))
        if "e_data" in record and "e_samples" in record:
            record["gap"] = record["e_samples"] - record["e_data"]
        self.write({"kind": "train", **record})
        if self.tensorboard is not None:
            self.tensorboard.step(record)
        self.last = record
        self._show()

    def event(self, message: str, record: dict | None = None) -> None:
        """An evaluation or checkpoint event: logged and printed as a line."""
        self.write({"kind": "event", "message": message, **(record or {})})
        if self.tensorboard is not None:
            self.tensorboard.event(message, record or {})
        self.events = (self.events + [message])[-3:]
        if self.live:
            self.live.update(self._table())
        elif not self.quiet:
            self.console.print(message, highlight=False)

    def _show(self) -> None:
        if self.live:
            self.live.update(self._table())
        elif not self.quiet:
            line = "  ".join(f"{k} {_fmt(self.last[k])}" for k in COLUMNS if k in self.last)
            self.console.print(line + (f"  ETA {self.eta}" if self.eta else ""), highlight=False)

    def _table(self) -> Group:
        table = Table(title="hdgen train" + (f"  ({self.status})" if self.status else ""), title_justify="left")
        cols = [k for k in COLUMNS if k in self.last] or COLUMNS
        for k in cols:
            table.add_column(k, justify="right")
        if self.eta:
            table.add_column("ETA", justify="right")
        if self.last:
            table.add_row(*(_fmt(self.last[k]) for k in cols), *([self.eta] if self.eta else []))
        return Group(*(Text(e, overflow="fold") for e in self.events), table)
