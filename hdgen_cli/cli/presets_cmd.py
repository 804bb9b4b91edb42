"""`hdgen presets list` and `hdgen presets show NAME [key=value ...]`."""

from __future__ import annotations

from typing import Optional

import typer

from hdgen_cli.cli.common import emit_json
from hdgen_cli.config import list_presets
from hdgen_cli.parts import load_config

app = typer.Typer(help="List and inspect presets (one per paper configuration).", no_args_is_help=True)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for key, value in d.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="print a JSON list")) -> None:
    """Every preset with its one-line description."""
    rows = [{"name": n, "description": load_config(n).description} for n in list_presets()]
    if json_out:
        emit_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name'].ljust(width)}  {r['description']}")


@app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="preset name"),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides to resolve"),
    json_out: bool = typer.Option(False, "--json", help="print the resolved config as JSON"),
) -> None:
    """The resolved config of a preset (after overrides), as `key = value` lines or JSON."""
    config = load_config(name, list(overrides or []))
    if json_out:
        emit_json(config.model_dump(mode="json"))
        return
    for key, value in _flatten(config.model_dump(mode="json")):
        print(f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {value}")
