"""Resuming a run from its checkpoint: weights, optimizer, buffer, data position and RNG come back
exactly; under torchrun each rank takes its own saved chains and position when the checkpoint ran
on as many processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hdgen_cli import distributed as dist
from hdgen_cli.checkpoint import Captured, Checkpoint, load_checkpoint, load_model_state
from hdgen_cli.tensors import section
from hdgen_cli.train.state import TrainingState


@dataclass
class ResumePoint:
    """Where a resumed run stands: the checkpoint's position dict and a note for the log."""

    path: Path
    position: dict
    note: str = ""  # what a resume on another number of processes could not restore

    @property
    def iteration(self) -> int:
        return self.position.get("iteration", 0)


def resume_into(path: str | Path | Checkpoint, state: TrainingState, seed: int) -> ResumePoint:
    """Load the checkpoint at `path` (a file, a run folder or one already read) into `state`; `seed`
    is the run's."""
    ckpt = path if isinstance(path, Checkpoint) else load_checkpoint(path)
    load_model_state(state.model, ckpt)  # names the mismatch when the checkpoint is another model's
    rank, world = dist.rank(), dist.world_size()
    saved_world = ckpt.position.get("world_size", 1)
    captured = ckpt.captured()
    own = section(ckpt.tensors, f"rank{rank}") if rank and saved_world == world else {}
    if own:  # this rank's own chains, data position and RNG
        captured = Captured(captured.iteration, {**captured.tensors, **own}, captured.optim_meta)
    state.restore(captured, str(ckpt.path), model=False, streams=saved_world == world)
    if rank and not own:  # only rank 0's generator states were saved: the others draw their own again
        torch.manual_seed(seed + rank + ckpt.position.get("iteration", 0))
    note = ""
    if saved_world != world:
        note = (f"; it ran on {saved_world} process(es), this on {world}: the data order starts afresh and the "
                "other ranks' chains from rank 0's buffer")
    return ResumePoint(ckpt.path, ckpt.position, note)
