"""The one feature network every bench run's FID and IS are measured with.

FID only compares methods when all of them are embedded by the same network, and never by the
evaluated model's own features (a model that maps everything to one point would score itself
perfectly). The bench uses the FID Inception when its weights are on disk; otherwise it trains a
reference classifier once per dataset (the softmax preset under the small profile, fixed seed) and
reuses it for every run of every bench that writes to the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.checkpoint import load_checkpoint
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation.generation import INCEPTION_ENV, INCEPTION_FILE
from hdgen_cli.runs import LAST, METRICS
from hdgen_cli.train import train

REFERENCE_SEED = 20261128
FEATURES = ("auto", "inception", "reference")


def inception_on_disk(weights: str | None) -> bool:

    if weights:
        return Path(weights).expanduser().is_file()
    if os.environ.get(INCEPTION_ENV):
        return Path(os.environ[INCEPTION_ENV]).expanduser().is_file()
    return (Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE).is_file()


def choose_features(kind: str, weights: str | None) -> str:
    """'inception' or 'reference' for `--features auto|inception|reference`."""
    if kind not in FEATURES:
        raise UsageError(f"unknown --features '{kind}'; use one of {', '.join(FEATURES)}")
    if kind == "auto":
        return "inception" if inception_on_disk(weights) else "reference"
    return kind


def reference_config(data_overrides: list[str]):
    extra = [*data_overrides, f"train.seed={REFERENCE_SEED}", "output.grid_size=1"]
    return load_profile("small").config("softmax", extra)


def reference_classifier(out: Path, data_overrides: list[str], quiet: bool = True) -> Path:
    """The reference classifier's checkpoint for this dataset under `out`, trained on first use."""

    cfg = reference_config(data_overrides)
    run_dir = out / f"reference-{cfg.data.name}"
    ckpt = run_dir / LAST
    resume = None
    if ckpt.is_file():
        try:
            saved = load_checkpoint(ckpt)
            if saved.config == cfg:
                if _finished(saved.position, cfg):
                    return ckpt
                resume = ckpt  # a bench killed while the reference trained: go on from its checkpoint
        except Exception:  # noqa: BLE001 - a damaged or foreign file is retrained below
            pass
    if resume is None and run_dir.exists():
        (run_dir / METRICS).unlink(missing_ok=True)
    train(cfg, run_dir, resume=resume, quiet=quiet)
    return ckpt


def _finished(position: dict, cfg) -> bool:
    """Whether a checkpoint ends its run's schedule (max_iters, else the epochs)."""
    if cfg.train.max_iters is not None:
        return position.get("iteration", 0) >= cfg.train.max_iters
    return position.get("epoch", 0) >= cfg.train.epochs - 1e-9
