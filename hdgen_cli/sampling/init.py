"""Initial distributions p0 for chains (docs/methods/shared.md): a registry of `fn(n, labels) -> images`."""

from __future__ import annotations

from typing import Protocol

import torch

from hdgen_cli.registry import Registry


class InitDistribution(Protocol):
    def __call__(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor: ...


INITS: Registry = Registry("initial distribution", "sampler.buffer.init")


def register_init(name: str):
    return INITS.register(name)


def list_inits() -> list[str]:
    return INITS.names()


def build_init(name: str, shape: tuple[int, ...], bounds: tuple[float, float], device, **context) -> InitDistribution:
    """`shape` is one image's (C, H, W); `context` carries what data-driven inits need."""
    return INITS.get(name)(shape=shape, bounds=bounds, device=device, **context)


@register_init("uniform")
def uniform_init(shape, bounds, device, **_):
    """U[lo, hi]^D, the JEM p0 (U[-1, 1] in the symmetric range)."""
    lo, hi = bounds

    def draw(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.rand((n, *shape), device=device) * (hi - lo) + lo

    return draw
