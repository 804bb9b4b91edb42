"""`hdgen calibrate`: expected calibration error, the bin table and a reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import (CkptOpt, DataDirOpt, DeviceOpt, DownloadOpt, JsonOpt, QuietOpt, SigmaOpt,
                                  checkpoint_or_newest, data_overrides, emit_json, emit_lines)


def calibrate(
    ckpt: CkptOpt = None,
    bins: int = typer.Option(20, "--bins", min=1, help="equal-width confidence bins"),
    split: str = typer.Option("test", "--split", help="test or valid"),
    sigma: SigmaOpt = None,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="reliability diagram PNG (default next to the checkpoint)"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """ECE of max p(y|x) over equal-width bins (last bin closed), with a reliability diagram; the
    mean confidence against accuracy, the logit scale, and the ECE after temperature scaling."""
    from hdgen_cli import api, progress

    ckpt = checkpoint_or_newest(ckpt)

    with progress.reporting(quiet):
        result = api.calibrate(ckpt, bins=bins, split=split, sigma=sigma, device=device,
                               data_overrides=data_overrides(data_dir, download), plot=out)
    if json_out:
        emit_json(result)
    else:
        emit_lines([("ece", result["ece"]), ("accuracy", result["accuracy"]),
                    ("mean_confidence", result["mean_confidence"]),
                    ("confidence_gap", f"{result['confidence_gap']:+.4f} ({result['confidence_direction']})"),
                    ("ece_temperature_scaled", result["ece_temperature_scaled"]),
                    ("temperature", f"{result['temperature']:.4f} (fitted by NLL on {_fit_on(result)}"
                                    + ("; at the end of its range: a bound, not an optimum)" if result["temperature_at_bound"] else ")")),
                    ("mean_lse", result["mean_lse"]), ("mean_top2_margin", result["mean_top2_margin"]),
                    ("bins", bins), ("images", result["n"]),
                    ("dataset", f"{result['dataset']} ({result['split']})"),
                    ("protocol", f"{result['protocol']} (sigma {result['sigma']})"), ("png", result["png"])])


def _fit_on(result: dict) -> str:
    if result["temperature_fit_on"] == "valid":
        return f"the validation split, {result['temperature_fit_n']} images"
    return (f"a seeded half of the {result['split']} split ({result['temperature_fit_n']} images; "
            f"scaled ECE on the other {result['temperature_eval_n']}, whose raw ECE is "
            f"{result['ece_unscaled_same_images']:.4f})")
