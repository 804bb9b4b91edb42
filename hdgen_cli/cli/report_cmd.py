"""`hdgen report`: one self-contained HTML page (or Markdown) about one or several runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import JsonOpt, checkpoint_or_newest, emit_json, emit_lines


def report(
    runs: Optional[list[Path]] = typer.Argument(None, help="run directories (default: the newest run)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="file to write (default RUN/report.html for one run, "
                                       "./report.html for several)"),
    fmt: str = typer.Option("html", "--format", "-f", help="html (self-contained page) or md (summary tables)"),
    json_out: JsonOpt = False,
) -> None:
    """Summary table, training curves, samples, calibration, OOD, robustness and config of runs."""
    from hdgen_cli import api
    from hdgen_cli.runs import resolve_checkpoint_path

    folders = list(runs) if runs else [resolve_checkpoint_path(checkpoint_or_newest(None)).parent]
    path = api.report(folders, out, fmt)
    result = {"report": str(path), "runs": [str(f) for f in folders], "format": fmt, "bytes": path.stat().st_size}
    if json_out:
        emit_json(result)
    else:
        emit_lines([("report", path), ("runs", len(folders)), ("size", f"{result['bytes'] / 1e6:.2f} MB")])
