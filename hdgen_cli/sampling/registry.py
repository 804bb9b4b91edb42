"""The sampler registry: `sampler.name` -> a builder `fn(sampler_cfg, info) -> sampler`.

Each sampler module registers its own builder (`@register_sampler("sgld")`), so adding a sampler
is one module and one decorator; `none` (no sampler: discriminative training) is registered here.
"""

from __future__ import annotations

from typing import Callable

from hdgen_cli.registry import Registry

SAMPLERS: Registry[Callable] = Registry("sampler", "sampler.name")


def register_sampler(name: str):
    """Decorator registering `fn(cfg: SamplerConfig, info: DataInfo) -> sampler` as `name`."""
    return SAMPLERS.register(name)


SAMPLERS.register("none", lambda cfg, info: None)


def build_sampler(cfg, info):
    """The sampler `cfg.name` names (a SamplerConfig) for data `info`, or None for `none`."""
    return SAMPLERS.get(cfg.name)(cfg, info)
