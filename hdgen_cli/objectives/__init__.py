"""Training objectives composed from weighted loss terms."""

from hdgen_cli.objectives.base import Objective, StepOutput
from hdgen_cli.objectives.gmmc import GMMCObjective
from hdgen_cli.objectives.jem import JEMObjective

OBJECTIVES = {"jem": JEMObjective, "gmmc": GMMCObjective}


def build_objective(cfg, sampler=None, buffer=None, num_classes: int = 0, device="cpu") -> Objective:
    """The objective `cfg.name` (an ObjectiveConfig) over the given sampler and replay buffer."""
    return OBJECTIVES[cfg.name](cfg, sampler, buffer, num_classes, device)


__all__ = ["GMMCObjective", "JEMObjective", "OBJECTIVES", "Objective", "StepOutput", "build_objective"]
