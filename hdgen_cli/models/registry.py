"""Backbone registry: name -> builder(cfg, in_channels, num_classes, image_size) -> nn.Module.

Every built module exposes `forward`, `features`, `feature_dim`, `num_classes` and
`first_layer` (the first conv/linear on the input, whose output gradient a YOPO-style
sampler reuses). Builders register themselves on import of their module; the package's
`__init__` imports the built-in ones, so this module imports none of them.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.registry import Registry

Builder = Callable[[ModelConfig, int, "int | None", int], nn.Module]


BACKBONES: Registry[Builder] = Registry("model", "model.name")


def register_backbone(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering `fn(cfg, in_channels, num_classes, image_size) -> nn.Module` as `name`."""
    return BACKBONES.register(name)


def list_backbones() -> list[str]:
    """Sorted names of every registered backbone."""
    return BACKBONES.names()


def build_backbone(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Build the backbone `cfg.name`; unknown names raise a one-line UsageError with a suggestion."""
    return BACKBONES.get(cfg.name)(cfg, in_channels, num_classes, image_size)


class Backbone(nn.Module):
    """Shared forward: logits from `head(features(x))` when there is a head, else the features."""

    feature_dim: int
    num_classes: int | None
    first_layer: nn.Module
    head: nn.Module | None

    def forward(self, x):
        phi = self.features(x)
        return phi if self.head is None else self.head(phi)


def make_head(cfg: ModelConfig, feature_dim: int, num_classes: int | None) -> tuple[nn.Module | None, int | None]:
    """The linear classifier and the class count it implies; (None, None) when headless."""
    if not cfg.head or num_classes is None:
        return None, None
    return nn.Linear(feature_dim, num_classes), num_classes
