"""Small helpers the command modules share: output and option parsing."""

from __future__ import annotations

import json
import sys

from rich.console import Console

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
