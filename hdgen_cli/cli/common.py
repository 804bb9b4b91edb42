"""Small helpers the command modules share: output and option parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

# Options every checkpoint command shares, declared once.
CkptOpt = Annotated[Optional[Path], typer.Option(
    "--ckpt", "-c", help="checkpoint file or run directory (default: the newest run under ./runs or $HDGEN_RUNS)")]
SigmaOpt = Annotated[Optional[float], typer.Option("--sigma", min=0.0, help="noise on inputs (default: the run's data.eval_sigma)")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="where the datasets live")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="download missing datasets")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress on stderr")]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # never wrap piped lines


def emit_json(obj) -> None:
    """One JSON object on stdout (machine-readable results)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def emit_lines(pairs: list[tuple[str, object]]) -> None:
    """Human results on stdout as `key: value` lines, easy to grep."""
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif value is None:
            value = "-"
        sys.stdout.write(f"{key.ljust(width)}  {value}\n")


def checkpoint_or_newest(ckpt: Path | None) -> Path:
    """--ckpt as given, or the newest run under the runs root, named on stderr."""
    from hdgen_cli.errors import UsageError
    from hdgen_cli.runs import newest_run, runs_root

    if ckpt is not None:
        return ckpt
    run = newest_run()
    if run is None:
        raise UsageError(f"no run found under {runs_root()}/; train one with `hdgen train --preset quickstart` "
                         "or pass --ckpt RUN_DIR")
    err_console.print(f"using {run} (newest)")
    return run


def data_overrides(data_dir: str | None, download: bool) -> list[str]:
    """--data-dir / --download as config overrides."""
    out = []
    if data_dir is not None:
        out.append(f"data.data_dir={data_dir}")
    if download:
        out.append("data.download=true")
    return out
