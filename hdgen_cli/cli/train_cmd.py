"""`hdgen train`: train a preset (with key=value overrides), or resume a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import data_overrides, emit_json, emit_lines
from hdgen_cli.errors import UsageError


def train(
    overrides: Optional[list[str]] = typer.Argument(None, help="config overrides key=value, e.g. sampler.steps=40 optim.lr=1e-4"),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="preset name (`hdgen presets list`)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory (default runs/<preset>-<time>)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue from a checkpoint or run directory"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where datasets live (offline: put the files here)"),
    download: bool = typer.Option(False, "--download", help="download the dataset if missing (needs internet)"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N"),
    force: bool = typer.Option(False, "--force", help="reuse a non-empty --out directory"),
    on_divergence: Optional[str] = typer.Option(None, "--on-divergence",
                                                help="recover (roll back and apply train.guard.remedies) or stop (exit 3)"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress on stderr"),
) -> None:
    """Train a model; prints test accuracy and writes checkpoints, metrics.jsonl and a sample grid."""
    from hdgen_cli import api
    from hdgen_cli.loading import open_checkpoint

    extra = list(overrides or []) + data_overrides(data_dir, download)
    if device is not None:
        extra.append(f"train.device={device}")
    if on_divergence is not None:
        extra.append(f"train.guard.on_divergence={on_divergence}")
    if resume is not None:
        if preset is not None:
            raise UsageError("--resume takes its config from the checkpoint; drop --preset (overrides are allowed)")
        saved = open_checkpoint(resume)  # read once: api.train and the trainer take it as it is
        config = api.override_config(saved.config, extra)
    else:
        saved, config = None, api.load_config(preset or "quickstart", extra)
    result = api.train(config, out, resume=saved, quiet=quiet, force=force)
    if json_out:
        emit_json(result.to_dict())
    else:
        emit_lines([("test accuracy", result.test_accuracy), ("test nll", result.test_nll),
                    ("iterations", result.iterations), ("recoveries", result.recoveries), ("seconds", result.seconds),
                    ("run dir", result.run_dir),
                    ("checkpoint", result.checkpoint), ("samples", result.samples_png or "-")])
