"""Optimizers and learning-rate schedules."""

from hdgen_cli.optim.build import build_optimizer, lr_at

__all__ = ["build_optimizer", "lr_at"]
