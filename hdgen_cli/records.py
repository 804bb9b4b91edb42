"""Evaluation results kept in the run: `RUN/evaluations/<command>-<time>.json`, plots beside it.

Every evaluation command (evaluate, calibrate, ood, attack, sample, generation metrics) still
returns and prints its result; it also records it here, so `hdgen report` and `hdgen bench`
collect results without re-running anything. Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hdgen_cli.distributed import is_main
from hdgen_cli.files import write_text_atomically
from hdgen_cli.runs import EVALUATIONS



class Record:
    """One evaluation's slot in the run: `png(what)` names its plots, `write(result)` its JSON."""

    def __init__(self, run_dir: str | Path, command: str):
        self.folder = Path(run_dir) / EVALUATIONS
        self.command, self.started = command, time.time()
        stem = f"{command}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(self.started))}"
        self.name, k = stem, 2
        while (self.folder / f"{self.name}.json").exists() or any(self.folder.glob(f"{self.name}-*.png")):
            self.name, k = f"{stem}-{k}", k + 1

    def png(self, what: str) -> Path:
        """Where this evaluation's plot `what` goes (the folder is made when the plot is written)."""
        return self.folder / f"{self.name}-{what}.png"

    def write(self, result: dict) -> Path | None:
        """The result as JSON, with the command and when it ran; None when the run is read-only."""
        if not is_main():
            return None
        record = {"command": self.command, "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
                  "started": self.started, "seconds": round(time.time() - self.started, 2), **result}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return write_text_atomically(self.folder / f"{self.name}.json", json.dumps(record, indent=1, default=str))
        except OSError:  # a checkpoint in a read-only place still evaluates; it only keeps no record
            return None

    def keep(self, result: dict) -> dict:
        """`result` after writing it, with the record's path added as `record` (when one was written)."""
        path = self.write(result)
        return {**result, "record": str(path)} if path is not None else result


def read_records(run_dir: str | Path, command: str | None = None) -> list[dict]:
    """The recorded results of a run, oldest first (each with its `file`); of one command if given."""
    folder = Path(run_dir) / EVALUATIONS
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a record
        if isinstance(record, dict) and (command is None or record.get("command") == command):
            out.append({**record, "file": str(path)})
    return sorted(out, key=lambda r: (r.get("started", 0.0), r["file"]))
