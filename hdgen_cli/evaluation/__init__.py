"""Evaluation: classification metrics (later: calibration, OOD, attacks, generation metrics)."""

from hdgen_cli.evaluation.classify import classify_metrics

__all__ = ["classify_metrics"]
