"""`hdgen attack`: PGD (L-inf, L2) robust accuracy per eps, or Carlini-Wagner L2 norms."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import (CkptOpt, DataDirOpt, DeviceOpt, DownloadOpt, JsonOpt, QuietOpt,
                                  checkpoint_or_newest, data_overrides, emit_json, emit_lines)


def attack(
    ckpt: CkptOpt = None,
    kind: str = typer.Option("pgd-linf", "--attack", "-a", help="pgd-linf, pgd-l2 or cw-l2"),
    eps: Optional[list[str]] = typer.Option(None, "--eps", help="budget on the [0, 1] scale, e.g. 8/255; repeat for a curve"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="attack iterations (PGD 40 / 50 for L2; C&W 100, targeted 1000)"),
    step_size: Optional[float] = typer.Option(None, "--step-size", min=0.0, help="PGD step (default 2.5 * eps / steps)"),
    random_start: bool = typer.Option(True, "--random-start/--no-random-start", help="PGD: start at a random point of the ball"),
    targeted: bool = typer.Option(False, "--targeted", help="C&W: a seeded random target label other than y"),
    defense: str = typer.Option("none", "--defense", help="none, or sgld:steps=L (purification; attacked with BPDA + EOT)"),
    eot: int = typer.Option(15, "--eot", min=1, help="gradient samples per step against a stochastic defence"),
    votes: int = typer.Option(150, "--votes", min=1, help="purifications voting on a defended prediction"),
    n: int = typer.Option(500, "--n", "--count", min=1, help="test images (a seeded subset); --count under torchrun"),
    seed: int = typer.Option(0, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="curve PNG (default next to the checkpoint)"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """White-box attacks on [0, 1] images in eval mode; eps in that scale (8/255 style)."""
    from hdgen_cli import api, progress

    ckpt = checkpoint_or_newest(ckpt)

    budgets = [api.parse_eps(e) for e in eps] if eps else None
    with progress.reporting(quiet):
        result = api.attack(ckpt, kind, budgets, steps, step_size, random_start, n, targeted, defense, eot, votes, seed,
                            device, data_overrides(data_dir, download), out)
    if json_out:
        emit_json(result)
        return
    lines = [("attack", kind), ("defense", result["defense"]), ("images", result["n"]), ("clean accuracy", result["clean_accuracy"])]
    if kind == "cw-l2":
        lines += [("success rate", result["success_rate"]), ("mean l2", result["mean_l2"])]
    else:
        lines += [(f"robust @ {r['eps']:.4g}", r["robust_accuracy"]) for r in result["results"]] + [("png", result["png"])]
    emit_lines(lines)
