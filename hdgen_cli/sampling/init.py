"""Initial distributions p0 for chains (SPEC §1.3): a registry of `fn(n, labels) -> images`."""

from __future__ import annotations

import difflib
from typing import Callable, Protocol

import torch

from hdgen_cli.errors import UsageError


class InitDistribution(Protocol):
    def __call__(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor: ...


_INITS: dict[str, Callable[..., InitDistribution]] = {}


def register_init(name: str):
    def deco(fn):
        _INITS[name] = fn
        return fn

    return deco


def list_inits() -> list[str]:
    return sorted(_INITS)


def build_init(name: str, shape: tuple[int, ...], bounds: tuple[float, float], device, **context) -> InitDistribution:
    """`shape` is one image's (C, H, W); `context` carries what data-driven inits need."""
    if name not in _INITS:
        close = difflib.get_close_matches(name, list(_INITS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown sampler.buffer.init '{name}'; {hint}(choose from: {', '.join(list_inits())})")
    return _INITS[name](shape=shape, bounds=bounds, device=device, **context)


@register_init("uniform")
def uniform_init(shape, bounds, device, **_):
    """U[lo, hi]^D, the JEM p0 (U[-1, 1] in the symmetric range)."""
    lo, hi = bounds

    def draw(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.rand((n, *shape), device=device) * (hi - lo) + lo

    return draw
