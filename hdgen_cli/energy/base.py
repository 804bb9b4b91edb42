"""The EnergyModel interface every head implements, and the head registry."""

from __future__ import annotations

import torch
from torch import nn

from hdgen_cli.registry import Registry

ENERGIES: Registry = Registry("energy", "energy.name")


class EnergyModel(nn.Module):
    """A backbone plus an energy head.

    `scores(x)` are the class scores whose softmax is p(y|x); `energy(x, y)` is E(x) when y is
    None and E(x, y) otherwise. Both energies are per sample, shape [B]. `energy_from_scores`
    lets a caller that already has the scores skip a second forward pass.
    """

    has_classifier = True  # False for unsupervised heads (CLEL): no accuracy, no p(y|x)
    # Methods that run the network; under torchrun the trainer routes them through DDP's forward.
    forward_methods: tuple[str, ...] = ("scores", "energy")

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def energy_from_scores(self, scores: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def energy(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.energy_from_scores(self.scores(x), y)

    def forward(self, *args, method: str = "scores", **kwargs) -> torch.Tensor:
        """`model(x)` is `scores(x)`; `model(x, method="energy")` runs another of `forward_methods`."""
        if method not in self.forward_methods:
            raise ValueError(f"{type(self).__name__} has no forward method {method!r}")
        return getattr(self, method)(*args, **kwargs)

    def calibrate(self, data, pixel_range: str) -> dict[str, float]:
        """Fit post-hoc constants of the head on the training data (GMMC's gamma-hat); none by default."""
        return {}


def register_energy(name: str):
    return ENERGIES.register(name)


def list_energies() -> list[str]:
    return ENERGIES.names()


def build_energy_model(cfg, backbone: nn.Module, num_classes: int) -> EnergyModel:
    """The head `cfg.name` (an EnergyConfig) over `backbone` for a `num_classes`-way dataset."""
    return ENERGIES.get(cfg.name)(backbone, cfg, num_classes)
