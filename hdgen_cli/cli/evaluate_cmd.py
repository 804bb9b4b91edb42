"""`hdgen evaluate`: test accuracy and NLL of a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import data_overrides, emit_json, emit_lines


def evaluate(
    ckpt: Path = typer.Option(..., "--ckpt", "-c", help="checkpoint file or run directory"),
    split: str = typer.Option("test", "--split", help="test or valid"),
    sigma: Optional[float] = typer.Option(None, "--sigma", min=0.0, help="noise on inputs (default: the run's data.eval_sigma)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where the dataset lives"),
    download: bool = typer.Option(False, "--download", help="download the dataset if missing"),
    device: str = typer.Option("auto", "--device"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Classification metrics of a checkpoint on its dataset (no preset needed)."""
    from hdgen_cli import api

    result = api.evaluate(ckpt, split=split, sigma=sigma, device=device,
                          data_overrides=data_overrides(data_dir, download))
    if json_out:
        emit_json(result)
    else:
        gamma = [("gamma", result["gamma"])] if "gamma" in result else []
        emit_lines([("accuracy", result["accuracy"]), ("nll", result["nll"]), *gamma, ("images", result["n"]),
                    ("dataset", f"{result['dataset']} ({result['split']})"),
                    ("protocol", f"{result['protocol']} (sigma {result['sigma']})"), ("checkpoint", result["checkpoint"])])
