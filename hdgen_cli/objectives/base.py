"""What every objective shares: the step output, the epoch it is at, and drawing refined chains."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hdgen_cli.distributed import unwrap
from hdgen_cli.registry import Registry


OBJECTIVES: Registry[type] = Registry("objective", "objective.name")


def register_objective(name: str):
    """Class decorator registering an Objective subclass as `objective.name=<name>`."""
    return OBJECTIVES.register(name)


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: torch.Tensor | None = None
    chains: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    """`__call__(model, x_lab, y_lab, x_data, chains=None) -> StepOutput`.

    The trainer sets `epoch` (fractional), `iteration` and `total_iters` before each step, for
    objectives that change over training, and `lr_scale` and `guard_l2` after a divergence roll-back. Passing
    `chains` from an earlier call's output reuses its samples without sampling again (SAM's
    second pass, [SADA] Algorithm 1 step 3).
    `info` (DataInfo) and `device` are for objectives that build state of their own.
    """

    energy_penalty = False  # whether the guard's energy_l2 remedy acts here (the JEM family's p(x) term)

    def __init__(self, cfg, sampler=None, buffer=None, info=None, device="cpu"):
        self.cfg, self.sampler, self.buffer = cfg, sampler, buffer
        self.epoch, self.iteration, self.total_iters = 0.0, 0, None
        self.lr_scale = 1.0  # the divergence guard's lower_lr remedy, for optimizers an objective owns
        self.guard_l2 = 0.0  # the divergence guard's energy_l2 remedy: extra energy-magnitude weight

    def bind(self, model) -> None:
        """Called once with the model being trained (CLEL keeps an EMA copy of it)."""

    def replicate(self, wrap) -> None:
        """Called under torchrun with `wrap(module) -> module` (DDP): objectives with trainable
        networks of their own (CLEL's encoder) route those networks' forwards through it."""

    def after_step(self) -> None:
        """Called once the optimizer has stepped (HDGE enqueues the step's logits here)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors a checkpoint must carry to resume this objective exactly (HDGE's queue)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def refine(self, model, batch: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Draw chains from the buffer, run the sampler, write them back (training only)."""
        x0, idx = self.buffer.draw(batch, y)
        x_q = self.sampler.run(unwrap(model), x0, y)  # sampler passes need no DDP gradient sync
        self.buffer.update(idx, x_q)
        return x_q
