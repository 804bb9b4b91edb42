"""The run directory: what a run folder holds, where runs live, and making and cleaning one up.

    RUN/config.json          the resolved config (written when the run starts)
    RUN/metrics.jsonl        one JSON object per log line or event
    RUN/last.safetensors     the latest checkpoint (best.safetensors: best validation accuracy;
                             iter-NNNNNNN / epoch-NNNN: kept ones; diverged.safetensors: a post-mortem)
    RUN/samples.png          the final sample grid
    RUN/evaluations/         one JSON record per evaluation command, plots beside it
    RUN/tb/                  TensorBoard events (train.log.tensorboard)

Every module reads these names from here.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from hdgen_cli.errors import CheckpointError, UsageError
from hdgen_cli.files import check_writable, unfinished_writes, write_text_atomically

CONFIG, METRICS, SAMPLES = "config.json", "metrics.jsonl", "samples.png"
LAST, BEST, DIVERGED = "last.safetensors", "best.safetensors", "diverged.safetensors"
EVALUATIONS, TENSORBOARD = "evaluations", "tb"


def kept_name(iteration: int) -> str:
    """The file a checkpoint kept at `iteration` (train.keep_iters) is written to."""
    return f"iter-{iteration:07d}.safetensors"


def epoch_name(epoch: int) -> str:
    """The file a checkpoint kept at the end of `epoch` (train.keep_every) is written to."""
    return f"epoch-{epoch:04d}.safetensors"


def runs_root(configured: str = "runs") -> Path:
    """Where runs live: a configured `output.root` other than the default, else `$HDGEN_RUNS`, else ./runs."""
    if configured != "runs":
        return Path(configured).expanduser()
    return Path(os.environ.get("HDGEN_RUNS") or "runs").expanduser()


def newest_run(root: str | Path | None = None) -> Path | None:
    """The run directory under `root` whose last checkpoint was written most recently, or None."""
    root = runs_root() if root is None else Path(root)
    if not root.is_dir():
        return None
    found = [((d / LAST).stat().st_mtime, d.name, d) for d in root.iterdir() if (d / LAST).is_file()]
    return max(found)[2] if found else None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its last checkpoint)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; pass a .safetensors file or a run directory from `hdgen train`")
    return path


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every record of a run's metrics.jsonl, skipping a line cut short by a kill; [] without one."""
    path = Path(run_dir) / METRICS
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def divergences(run_dir: str | Path, until: int | None = None) -> int:
    """The divergence and give-up events in a run's log (up to iteration `until`, when given)."""
    return sum(1 for e in read_metrics(run_dir) if ("divergence" in e or e.get("gave_up"))
               and (until is None or (e.get("iter") or 0) <= until))


def choose_run_dir(out: Path | None, root: Path | str, name: str, force: bool) -> Path:
    """`out`, or a fresh `root/<name>-<time>`; refuses a file, or a non-empty folder without `force`."""
    if out is None:
        out = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for the run")
    if out.exists() and any(out.iterdir()) and not force:
        raise UsageError(f"run directory {out} already exists and is not empty; pass --force to reuse it, "
                         f"--resume {out} to continue it, or another --out")
    return check_writable(out, "--out")


def open_run_dir(run_dir: Path, config_json: str) -> list[Path]:
    """Create the run folder, remove what a killed run left half-written (returned, for the log)
    and snapshot the config (nanoGPT style: the config lives with its run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    leftovers = unfinished_writes(run_dir)
    for path in leftovers:
        path.unlink(missing_ok=True)
    write_text_atomically(run_dir / CONFIG, config_json)
    return leftovers


def has_trained(run_dir: Path) -> bool:
    """Whether a run logged a training step or wrote a checkpoint or a divergence snapshot (the gm
    init's cached mixture, `gm-*.safetensors`, is set-up, not training)."""
    if any(r.get("kind") == "train" for r in read_metrics(run_dir)):
        return True
    return any(p.name.endswith(".safetensors") and not p.name.startswith("gm-") for p in run_dir.iterdir())


def remove_if_unused(run_dir: Path, made_parent: Path | None) -> None:
    """A new run that failed while setting up (dataset missing offline, bad shape, ...) leaves no
    directory behind, nor the runs root it made, so the same command works once the cause is
    fixed. A run that trained is kept."""
    if not run_dir.is_dir() or has_trained(run_dir):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    if made_parent is not None and made_parent.is_dir() and not any(made_parent.iterdir()):
        made_parent.rmdir()
