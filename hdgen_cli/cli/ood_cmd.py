"""`hdgen ood`: AUROC of OOD scores for the in-distribution test set against OOD sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import (CkptOpt, DataDirOpt, DeviceOpt, DownloadOpt, JsonOpt, QuietOpt, SigmaOpt,
                                  checkpoint_or_newest, data_overrides, emit_json)


def ood(
    ckpt: CkptOpt = None,
    score: Optional[list[str]] = typer.Option(None, "--score", "-s", help="logpx, maxprob or grad-norm; repeat for several (default: all that apply)"),
    sets: Optional[list[str]] = typer.Option(None, "--ood", help="interp, uniform, constant, a dataset name (svhn, cifar100, celeba, ...) or a folder of images; repeat (default: the three generated sets)"),
    n: int = typer.Option(1000, "--n", "--count", min=1, help="images per side; --count under torchrun"),
    sigma: SigmaOpt = None,
    beta_ood: float = typer.Option(0.1, "--beta-ood", min=0.0, help="CLEL: weight of the encoder term in s(x)"),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="where the histogram PNGs go (default next to the checkpoint)"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    seed: int = typer.Option(0, "--seed", help="seed for the image subsets and generated sets"),
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Out-of-distribution detection: one AUROC per score and OOD set (higher score = in-distribution)."""
    from hdgen_cli import api, progress

    ckpt = checkpoint_or_newest(ckpt)

    with progress.reporting(quiet):
        result = api.ood(ckpt, scores=score, sets=sets, n=n, sigma=sigma, device=device,
                         data_overrides=data_overrides(data_dir, download), out_dir=out_dir, seed=seed, beta_ood=beta_ood)
    if json_out:
        emit_json(result)
        return
    rows = result["results"]
    width = max(len(r["ood"]) for r in rows)
    print(f"{'score':<10} {'ood':<{width}}  auroc   ({result['dataset']} test is positive; {result['protocol']} protocol)")
    for r in rows:
        print(f"{r['score']:<10} {r['ood']:<{width}}  {r['auroc']:.4f}")
