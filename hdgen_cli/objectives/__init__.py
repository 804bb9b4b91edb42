"""Training objectives composed from weighted loss terms."""

from hdgen_cli.objectives.jem import JEMObjective, StepOutput

__all__ = ["JEMObjective", "StepOutput"]
