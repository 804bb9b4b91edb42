"""The EnergyModel interface every head implements, and the head registry."""

from __future__ import annotations

import difflib
from typing import Callable

import torch
from torch import nn

from hdgen_cli.errors import UsageError

_HEADS: dict[str, Callable[..., "EnergyModel"]] = {}


class EnergyModel(nn.Module):
    """A backbone plus an energy head.

    `scores(x)` are the class scores whose softmax is p(y|x); `energy(x, y)` is E(x) when y is
    None and E(x, y) otherwise. Both energies are per sample, shape [B]. `energy_from_scores`
    lets a caller that already has the scores skip a second forward pass.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def energy_from_scores(self, scores: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def energy(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.energy_from_scores(self.scores(x), y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores(x)


def register_energy(name: str):
    def deco(cls):
        _HEADS[name] = cls
        return cls

    return deco


def list_energies() -> list[str]:
    return sorted(_HEADS)


def build_energy_model(name: str, backbone: nn.Module) -> EnergyModel:
    if name not in _HEADS:
        close = difflib.get_close_matches(name, list(_HEADS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown energy '{name}'; {hint}(choose from: {', '.join(list_energies())})")
    return _HEADS[name](backbone)
