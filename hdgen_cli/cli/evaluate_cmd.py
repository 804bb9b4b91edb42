"""`hdgen evaluate`: test accuracy and NLL of a checkpoint, and with --fid its generation metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import (CkptOpt, DataDirOpt, DeviceOpt, DownloadOpt, JsonOpt, QuietOpt, SigmaOpt,
                                  checkpoint_or_newest, data_overrides, emit_json, emit_lines)


def evaluate(
    ckpt: CkptOpt = None,
    split: str = typer.Option("test", "--split", help="test or valid"),
    sigma: SigmaOpt = None,
    fid: bool = typer.Option(False, "--fid", help="also FID (against the training split) and Inception Score of samples"),
    n_samples: int = typer.Option(1000, "--n-samples", min=2, help="--fid: fresh samples to draw"),
    steps: Optional[int] = typer.Option(None, "--steps", min=0, help="--fid: sampler steps (default: the training sampler's)"),
    init: str = typer.Option("noise", "--init", help="--fid: noise (p0) or buffer starts for the fresh chains"),
    protocol: str = typer.Option("fresh", "--protocol", help="--fid: fresh samples, or buffer (the saved replay buffer, unfiltered)"),
    features: Optional[Path] = typer.Option(None, "--features", help="--fid: a classifier checkpoint whose features replace Inception (offline)"),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="--fid: the pt_inception-2015-12-05 weights file"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    seed: int = typer.Option(0, "--seed", help="--fid: sampling seed"),
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Classification metrics of a checkpoint on its dataset (no preset needed); --fid adds FID and IS."""
    from hdgen_cli import api, progress

    ckpt = checkpoint_or_newest(ckpt)

    overrides = data_overrides(data_dir, download)
    generation = None
    with progress.reporting(quiet):
        if fid:
            generation = api.generation_metrics(ckpt, n_samples, steps, init, protocol, features, inception_weights,
                                                device, overrides, seed)
        result = api.evaluate(ckpt, split=split, sigma=sigma, device=device, data_overrides=overrides) \
            if generation is None or generation["classifier"] else {"checkpoint": generation["checkpoint"]}
    if generation is not None:
        result["generation"] = generation
    if json_out:
        emit_json(result)
        return
    lines = []
    if "accuracy" in result:
        gamma = [("gamma", result["gamma"])] if "gamma" in result else []
        lines += [("accuracy", result["accuracy"]), ("nll", result["nll"]), *gamma, ("images", result["n"]),
                  ("dataset", f"{result['dataset']} ({result['split']})"),
                  ("protocol", f"{result['protocol']} (sigma {result['sigma']})")]
    if generation is not None:
        g = generation
        drawn = f"{g['n']} {g['protocol']}" + (f", {g['steps']} steps from {g['init']}" if g["protocol"] == "fresh" else "")
        lines += [("fid", g["fid"]), ("inception score", f"{g['inception_score']:.3f} +- {g['inception_score_std']:.3f}"),
                  ("samples", drawn), ("features", g["features"]), ("reference", g["reference"])]
    emit_lines(lines + [("checkpoint", result["checkpoint"])])
