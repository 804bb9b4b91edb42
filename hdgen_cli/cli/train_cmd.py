"""`hdgen train`: train a preset (with key=value overrides), or resume a run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import data_overrides, emit_json, emit_lines
from hdgen_cli.errors import UsageError
from hdgen_cli.files import check_writable

# What a resumed run cannot change: the tensors in its checkpoint (weights, optimizer slots, buffer,
# queue, encoder, data streams) were shaped by these. Everything else (lr, steps, epochs, the
# guard, logging) may be overridden on --resume.
FIXED_ON_RESUME = ("model.", "energy.", "data.name", "data.image_size", "data.pixel_range", "data.n_valid",
                   "data.split_seed", "data.shared_batch", "data.px.batch_size", "data.ce.batch_size", "data.epoch_by",
                   "objective.name", "objective.hdge.queue_size", "objective.hdge.negatives",
                   "objective.clel.encoder_width", "optim.name", "sampler.name", "sampler.buffer.size")


def _run_dir(out: Optional[Path], root: Path | str, name: str, force: bool) -> Path:
    if out is None:
        out = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for the run")
    if out.exists() and any(out.iterdir()) and not force:
        raise UsageError(f"run directory {out} already exists and is not empty; pass --force to reuse it, "
                         f"--resume {out} to continue it, or another --out")
    return check_writable(out, "--out")


def _remove_if_unused(run_dir: Path, made_parent: Path | None) -> None:
    """A new run that failed while setting up (dataset missing offline, bad shape, ...) leaves no
    directory behind, nor the `runs/` it made, so the same command works once the cause is fixed.
    A run that trained (it logged a step, or wrote a checkpoint or a divergence snapshot) is kept."""
    from hdgen_cli.distributed import is_main

    if not is_main() or not run_dir.is_dir():
        return
    names = {p.name for p in run_dir.iterdir()}
    metrics = run_dir / "metrics.jsonl"
    trained = metrics.is_file() and '"kind": "train"' in metrics.read_text()
    if trained or any(n.endswith(".safetensors") and not n.startswith("gm-") for n in names):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    if made_parent is not None and made_parent.is_dir() and not any(made_parent.iterdir()):
        made_parent.rmdir()


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
    from hdgen_cli.config.presets import config_differences
    from hdgen_cli.distributed import share_from_main
    from hdgen_cli.parts import resolve_device
    from hdgen_cli.train.checkpoint import load_checkpoint, runs_root

    extra = list(overrides or []) + data_overrides(data_dir, download)
    if device is not None:
        extra.append(f"train.device={device}")
    if on_divergence is not None:
        extra.append(f"train.guard.on_divergence={on_divergence}")
    if resume is not None:
        if preset is not None:
            raise UsageError("--resume takes its config from the checkpoint; drop --preset (overrides are allowed)")
        ckpt = load_checkpoint(resume)
        config = api.override_config(ckpt.config, extra)
        changed = config_differences(ckpt.config, config, FIXED_ON_RESUME)
        if changed:
            raise UsageError(f"--resume cannot change what {ckpt.path.name} was trained with ({'; '.join(changed)}); "
                             "drop those overrides, or start a new run with --preset")
        resume_path = ckpt.path
    else:
        config = api.load_config(preset or "quickstart", extra)
        resume_path = None
    fresh = resume is None and (out is None or not out.exists())  # this command makes the directory
    parent = out.parent if out is not None else runs_root(config.output.root)
    made_parent = parent if fresh and not parent.exists() else None
    resolve_device(config.train.device)  # under torchrun: join the process group before choosing the run dir
    if resume is not None:
        run_dir = ckpt.path.parent if out is None else share_from_main(lambda: _run_dir(out, "", "", force=True))
    else:  # rank 0 picks (and checks) the directory; every rank uses its choice
        run_dir = share_from_main(lambda: _run_dir(out, runs_root(config.output.root), config.name, force))
    try:
        result = api.train(config, run_dir, resume=resume_path, quiet=quiet)
    except BaseException:
        if fresh:
            _remove_if_unused(run_dir, made_parent)
        raise
    if json_out:
        emit_json(result.to_dict())
    else:
        emit_lines([("test accuracy", result.test_accuracy), ("test nll", result.test_nll),
                    ("iterations", result.iterations), ("recoveries", result.recoveries), ("seconds", result.seconds),
                    ("run dir", result.run_dir),
                    ("checkpoint", result.checkpoint), ("samples", result.samples_png or "-")])

