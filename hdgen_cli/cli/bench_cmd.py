"""`hdgen bench`: train presets x seeds on one dataset, evaluate each run alike, check the papers' claims."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import DataDirOpt, DeviceOpt, DownloadOpt, QuietOpt, data_overrides, emit_json, emit_lines


def bench(
    overrides: Optional[list[str]] = typer.Argument(None, help="config overrides for every run, e.g. data.name=shapes"),
    presets: Optional[str] = typer.Option(None, "--presets", help="comma-separated presets (default: all eleven methods)"),
    seeds: int = typer.Option(3, "--seeds", help="seeds per preset (1..N)"),
    profile: str = typer.Option("small", "--profile", help="small (scaled to small data, CPU), fashion (Fashion-MNIST with --at, CPU) or paper (as published)"),
    out: Path = typer.Option(Path("bench"), "--out", "-o", help="bench folder: one run folder per preset and seed"),
    quick: bool = typer.Option(False, "--quick", help="4 methods (softmax, jem, jempp-m5, hdge), 1 seed"),
    at: Optional[str] = typer.Option(None, "--at", help="training budgets in iterations, e.g. 1000,3000,10000: each "
                                     "run trains the largest budget's schedule and is evaluated at every one"),
    features: str = typer.Option("auto", "--features", help="FID/IS features: auto, inception or reference"),
    inception_weights: Optional[str] = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05 file"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    device: DeviceOpt = "auto",
    json_out: bool = typer.Option(False, "--json", help="print results.json's claims and summary as one JSON object"),
    quiet: QuietOpt = False,
) -> None:
    """Train a grid of presets x seeds, evaluate every run with one protocol, write results.md and the claims table."""
    from hdgen_cli.bench import DEFAULT_PRESETS, QUICK_PRESETS, BenchSpec, run_bench
    from hdgen_cli.bench.budgets import parse_at

    chosen = [p.strip() for p in presets.split(",") if p.strip()] if presets else list(QUICK_PRESETS if quick else DEFAULT_PRESETS)
    extra = list(overrides or [])
    if not any(o.startswith("data.name=") for o in extra):
        extra.insert(0, "data.name=digits")
    spec = BenchSpec(presets=chosen, seeds=1 if quick else seeds, profile=profile, out=out,
                     overrides=extra + data_overrides(data_dir, download), features=features,
                     inception_weights=inception_weights, device=device, at=parse_at(at))
    results = run_bench(spec, quiet=quiet)
    if json_out:
        keys = ("dataset", "profile", "presets", "seeds", "summary", "claims", "budgets", "schedule", "by_budget")
        emit_json({k: results[k] for k in keys if k in results})
        return
    counts = {}
    for claim in results["claims"]:
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    emit_lines([("runs", len(results["runs"])), ("claims", ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))),
                *([("budgets", results["schedule"])] if results.get("budgets") else []),
                ("results", str(out / "results.md")), ("json", str(out / "results.json")),
                ("report", results.get("report", "-"))])
