"""Training objectives composed from weighted loss terms."""

from hdgen_cli.objectives.base import OBJECTIVES, Objective, StepOutput, register_objective
from hdgen_cli.objectives.clel import CLELObjective
from hdgen_cli.objectives.gmmc import GMMCObjective
from hdgen_cli.objectives.jem import JEMObjective


def build_objective(cfg, sampler=None, buffer=None, info=None, device="cpu") -> Objective:
    """The objective `cfg.name` (an ObjectiveConfig) over the given sampler, replay buffer and data (DataInfo)."""
    return OBJECTIVES.get(cfg.name)(cfg, sampler, buffer, info, device)


__all__ = ["CLELObjective", "GMMCObjective", "JEMObjective", "OBJECTIVES", "Objective", "StepOutput", "build_objective",
           "register_objective"]
