"""Trainer loop, live monitor, checkpoints."""

from hdgen_cli.train.guard import DivergenceGuard, TrainingDiverged
from hdgen_cli.train.trainer import TrainResult, train, train_step

__all__ = ["DivergenceGuard", "TrainResult", "TrainingDiverged", "train", "train_step"]
