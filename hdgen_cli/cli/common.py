"""Small helpers the command modules share: output and option parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

# Options every checkpoint command shares, declared once.
CkptOpt = Annotated[Path, typer.Option("--ckpt", "-c", help="checkpoint file or run directory")]
SigmaOpt = Annotated[Optional[float], typer.Option("--sigma", min=0.0, help="noise on inputs (default: the run's data.eval_sigma)")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="where the datasets live")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="download missing datasets")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]

err_console = Console(stderr=True, highlight=False)


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


def data_overrides(data_dir: str | None, download: bool) -> list[str]:
    """--data-dir / --download as config overrides."""
    out = []
    if data_dir is not None:
        out.append(f"data.data_dir={data_dir}")
    if download:
        out.append("data.download=true")
    return out
