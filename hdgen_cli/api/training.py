"""`api.train`: train a config into a run folder, or continue a checkpoint, with the same checks
the command line makes (the run folder is chosen and checked, a resume may not change what the
checkpoint's tensors were shaped by, and a run that fails while setting up leaves nothing)."""

from __future__ import annotations

from pathlib import Path

from hdgen_cli import distributed as dist
from hdgen_cli.checkpoint import Checkpoint
from hdgen_cli.config.presets import config_differences
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.errors import UsageError
from hdgen_cli.loading import open_checkpoint
from hdgen_cli.parts import check_names, resolve_device
from hdgen_cli.runs import choose_run_dir, remove_if_unused, runs_root
from hdgen_cli.train import TrainResult
from hdgen_cli.train import train as run_training

# What a resumed run cannot change: the tensors in its checkpoint (weights, optimizer slots, buffer,
# queue, encoder, data streams) were shaped by these. Everything else (lr, steps, epochs, the
# guard, logging) may be overridden on a resume.
FIXED_ON_RESUME = ("model.", "energy.", "data.name", "data.image_size", "data.pixel_range", "data.n_valid",
                   "data.split_seed", "data.shared_batch", "data.px.batch_size", "data.ce.batch_size", "data.epoch_by",
                   "objective.name", "objective.hdge.queue_size", "objective.hdge.negatives",
                   "objective.clel.encoder_width", "optim.name", "sampler.name", "sampler.buffer.size")


def train(config: RunConfig, run_dir: str | Path | None = None, resume: str | Path | Checkpoint | None = None,
          quiet: bool = False, force: bool = False) -> TrainResult:
    """Train `config` into `run_dir` (default `<output.root>/<name>-<time>`), or continue the
    checkpoint `resume` (a file, a run folder or a loaded Checkpoint; its folder is the default
    `run_dir`). A non-empty `run_dir` needs `force`; a resumed `config` must match the checkpoint's
    in FIXED_ON_RESUME. Every registry name is checked before anything is written."""
    check_names(config)
    out = Path(run_dir).expanduser() if run_dir is not None else None
    ckpt = None
    if resume is not None:
        ckpt = open_checkpoint(resume)
        changed = config_differences(ckpt.config, config, FIXED_ON_RESUME)
        if changed:
            raise UsageError(f"--resume cannot change what {ckpt.path.name} was trained with ({'; '.join(changed)}); "
                             "drop those overrides, or start a new run with --preset")
    fresh = resume is None and (out is None or not out.exists())  # this call makes the folder
    parent = out.parent if out is not None else runs_root(config.output.root)
    made_parent = parent if fresh and not parent.exists() else None
    resolve_device(config.train.device)  # under torchrun: join the process group before choosing the folder
    if ckpt is not None:
        folder = ckpt.path.parent if out is None else dist.share_from_main(lambda: choose_run_dir(out, "", "", True))
    else:  # rank 0 picks (and checks) the folder; every rank uses its choice
        folder = dist.share_from_main(lambda: choose_run_dir(out, runs_root(config.output.root), config.name, force))
    try:
        return run_training(config, folder, resume=ckpt, quiet=quiet)
    except BaseException:
        if fresh and dist.is_main():
            remove_if_unused(folder, made_parent)
        raise
