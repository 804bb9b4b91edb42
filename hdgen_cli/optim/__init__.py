"""Optimizers and learning-rate schedules."""

from hdgen_cli.optim.build import build_optimizer, lr_at
from hdgen_cli.optim.sam import SAM

__all__ = ["SAM", "build_optimizer", "lr_at"]
