"""Divergence guard (SPEC §1.5): a non-finite loss, or |loss| above the threshold, stops training
with a `diverged` snapshot (the last samples and the loss history) instead of a crash or a
silent return as in the official code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from hdgen_cli.errors import HdgenError


class TrainingDiverged(HdgenError):
    exit_code = 3


class DivergenceGuard:
    def __init__(self, threshold: float, run_dir: Path, resume_hint: Path, write: bool = True):
        self.threshold, self.run_dir, self.resume_hint, self.write = threshold, run_dir, resume_hint, write
        self.history: list[float] = []
        self.last_samples: torch.Tensor | None = None

    def check(self, out, iteration: int, read_loss: bool, loss: torch.Tensor | None = None) -> float | None:
        """Raise TrainingDiverged on a bad loss; return the loss value when `read_loss` (a host sync).
        `loss` replaces out.loss for the decision (the mean over ranks under torchrun)."""
        if out.samples is not None:
            self.last_samples = out.samples
        loss_t = (out.loss if loss is None else loss).detach()
        value = float(loss_t) if read_loss else None
        if not torch.isfinite(loss_t) or (value is not None and abs(value) > self.threshold):
            loss = float(loss_t)
            snap = self.snapshot(loss)
            start = f"resume from {self.resume_hint}" if self.resume_hint.exists() else "start again"
            raise TrainingDiverged(f"training diverged at iteration {iteration} (loss {loss:.3g}); snapshot in {snap}. "
                                   f"To continue, {start} with more sampler steps (sampler.steps=...) or a lower optim.lr")
        if value is not None:
            self.history.append(value)
        return value

    def snapshot(self, loss: float) -> Path:
        snap = self.run_dir / "diverged.safetensors"
        if not self.write:  # only rank 0 writes
            return snap
        samples = self.last_samples if self.last_samples is not None else torch.zeros(0)
        save_file({"samples": samples.detach().cpu().contiguous(),
                   "loss_history": torch.tensor(self.history + [loss], dtype=torch.float64)}, str(snap))
        return snap
