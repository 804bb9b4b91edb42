"""`hdgen calibrate`: expected calibration error, the bin table and a reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import data_overrides, emit_json, emit_lines


def calibrate(
    ckpt: Path = typer.Option(..., "--ckpt", "-c", help="checkpoint file or run directory"),
    bins: int = typer.Option(20, "--bins", min=1, help="equal-width confidence bins"),
    split: str = typer.Option("test", "--split", help="test or valid"),
    sigma: Optional[float] = typer.Option(None, "--sigma", min=0.0, help="noise on inputs (default: the run's data.eval_sigma)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="reliability diagram PNG (default next to the checkpoint)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where the dataset lives"),
    download: bool = typer.Option(False, "--download", help="download the dataset if missing"),
    device: str = typer.Option("auto", "--device"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object (with the bin table)"),
) -> None:
    """ECE of max p(y|x) over equal-width bins (last bin closed), with a reliability diagram."""
    from hdgen_cli import api

    result = api.calibrate(ckpt, bins=bins, split=split, sigma=sigma, device=device,
                           data_overrides=data_overrides(data_dir, download), plot=out)
    if json_out:
        emit_json(result)
    else:
        emit_lines([("ece", result["ece"]), ("accuracy", result["accuracy"]), ("bins", bins), ("images", result["n"]),
                    ("dataset", f"{result['dataset']} ({result['split']})"),
                    ("protocol", f"{result['protocol']} (sigma {result['sigma']})"), ("png", result["png"])])
