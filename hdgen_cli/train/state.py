"""Everything a run needs to continue exactly, as one flat dict of tensors (plus the optimizer's
JSON side). A checkpoint writes it to disk; the divergence guard keeps the last good one in
memory and rolls back to it. One capture and one restore serve both, so a resumed run and a
rolled-back run are put back by the same code.

Namespaces: `model.`, `optim.state.<i>.`, `buffer.`, `stream.<name>.`, `objective.` (HDGE's
queue, CLEL's encoder, EMA copies and encoder optimizer) and `rng.` (the global torch and CUDA
generators; each data stream carries its own). Under torchrun the weights and optimizer are the
same on every rank, while the `PER_RANK` parts differ; a checkpoint stores rank r's copies of
those under `rank<r>.` so every rank resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hdgen_cli.checkpoint import Captured
from hdgen_cli.tensors import section
from hdgen_cli.optim.flat import flatten_optimizer, unflatten_optimizer


PER_RANK = ("buffer.", "stream.", "rng.", "objective.queue.")


def per_rank(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries that differ between ranks (own chains, data shard position, RNG, HDGE queue)."""
    return {k: v for k, v in tensors.items() if k.startswith(PER_RANK)}


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"rng.cuda.{i}"] = s
    return state


def _set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].cpu())
    cuda = section(tensors, "rng.cuda")
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([cuda[str(i)].cpu() for i in range(min(len(cuda), torch.cuda.device_count()))])


@dataclass
class TrainingState:
    """The live parts of a run. Only `model` is required (an inference checkpoint)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer | None = None
    buffer: object | None = None  # ReplayBuffer
    objective: object | None = None  # Objective
    streams: dict = field(default_factory=dict)

    def capture(self, iteration: int) -> Captured:
        """Detached copies of every tensor (on their own devices; the live run goes on untouched)."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        meta = None
        if self.optimizer is not None:
            opt_tensors, meta = flatten_optimizer(self.optimizer)
            tensors.update(opt_tensors)
        if self.buffer is not None:
            tensors.update({f"buffer.{k}": v for k, v in self.buffer.state_dict().items()})
        for name, stream in self.streams.items():
            tensors.update({f"stream.{name}.{k}": v for k, v in stream.state_dict().items()})
        if self.objective is not None:
            tensors.update({f"objective.{k}": v for k, v in self.objective.state_dict().items()})
        tensors.update(_rng_state())
        return Captured(iteration, {k: v.detach().clone() for k, v in tensors.items()}, meta)

    def restore(self, captured: Captured, source: str, model: bool = True, streams: bool = True) -> None:
        """Put a capture (or a checkpoint's tensors) back into every part. `model=False` leaves the
        weights alone (a resume that loaded them already); `streams=False` keeps the fresh data
        order (a resume on another number of processes, whose shards differ)."""
        tensors = captured.tensors
        if model:
            self.model.load_state_dict(section(tensors, "model"))
        if self.optimizer is not None:
            unflatten_optimizer(self.optimizer, section(tensors, "optim.state"), captured.optim_meta, source)
        if self.buffer is not None:
            self.buffer.load_state_dict(section(tensors, "buffer"))
        for name, stream in self.streams.items() if streams else ():
            stream.load_state_dict(section(tensors, f"stream.{name}"))
        if self.objective is not None:
            self.objective.load_state_dict(section(tensors, "objective"))
        _set_rng_state(tensors)
