"""`hdgen import` and `hdgen export`: the official codes' checkpoint files in and out of hdgen runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import CkptOpt, JsonOpt, checkpoint_or_newest, emit_json, emit_lines

CODES_HELP = "jem, jempp, sadajem, mebm, gmmc, hdge or clel"


def import_(
    file: Path = typer.Argument(..., help="the official code's torch.save checkpoint (e.g. best_valid_ckpt.pt, CLEL's best.ckpt)"),
    source: str = typer.Option(..., "--from", help=f"which code wrote it: {CODES_HELP}"),
    out: Path = typer.Option(..., "--out", "-o", help="run directory to write (config.json, last.safetensors)"),
    overrides: Optional[list[str]] = typer.Argument(None, help="config overrides key=value, e.g. data.name=svhn"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="the run's preset (default: the code's, e.g. "
                                         "jempp-m10; hdge-jem for an HDGE run trained with p(x))"),
    force: bool = typer.Option(False, "--force", help="overwrite a run already in --out"),
    json_out: JsonOpt = False,
) -> None:
    """Read an official checkpoint (tensors only: nothing in it runs) into an hdgen run directory."""
    from hdgen_cli import api

    result = api.import_checkpoint(source, file, out, list(overrides or []), force=force, preset=preset)
    if json_out:
        emit_json(result)
    else:
        emit_lines([("run", result["run"]), ("from", result["from"]), ("preset", result["preset"]),
                    ("model", result["architecture"]), ("tensors", result["tensors"]),
                    ("buffer", result["buffer"] or "none"), ("dropped", ", ".join(result["dropped"]) or "none"),
                    *[("note", note) for note in result["notes"]]])


def export(
    file: Path = typer.Argument(..., help="the .pt file to write"),
    target: str = typer.Option(..., "--to", help="jem, jempp or sadajem"),
    ckpt: CkptOpt = None,
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
    json_out: JsonOpt = False,
) -> None:
    """Write a run's WRN model and replay buffer as the official code's checkpoint (tensors only)."""
    from hdgen_cli import api

    result = api.export_checkpoint(checkpoint_or_newest(ckpt), target, file, force=force)
    if json_out:
        emit_json(result)
    else:
        emit_lines([("file", result["file"]), ("to", result["to"]), ("tensors", result["tensors"]),
                    ("buffer", result["buffer"] or "none")])
