"""Trainer loop, live monitor, checkpoints."""

from hdgen_cli.train.trainer import TrainingDiverged, TrainResult, train

__all__ = ["TrainResult", "TrainingDiverged", "train"]
