"""Build the parts a RunConfig names: device, model (backbone + energy head), sampler, buffer,
objective, optimizer; `build_run` assembles all of them, for the trainer, the bench's cost timing
and the benchmarks alike.

A method is a composition of registered parts (docs/architecture.md), so the trainer never
knows which paper it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hdgen_cli import config as configs
from hdgen_cli import distributed as dist
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import DataInfo, ImageSet
from hdgen_cli.data.registry import DATASETS, _resolve
from hdgen_cli.energy import EnergyModel, build_energy_model
from hdgen_cli.energy.base import ENERGIES
from hdgen_cli.errors import UsageError
from hdgen_cli.models import build_backbone
from hdgen_cli.models.fastpath import prepare_model
from hdgen_cli.models.registry import BACKBONES
from hdgen_cli.objectives import OBJECTIVES, Objective, build_objective
from hdgen_cli.optim import build_optimizer
from hdgen_cli.sampling import SAMPLERS, ReplayBuffer, build_init, build_sampler
from hdgen_cli.sampling.init import INITS

__all__ = ["DataInfo", "Run", "build_buffer", "build_model", "build_p0", "build_run", "build_sampler", "check_names",
           "load_config", "override_config", "resolve_device"]


def check_names(config: RunConfig) -> None:
    """Every registry name the config holds exists (model, energy, sampler, objective, dataset, buffer init), so a typo
    is a usage error before a run directory or a dataset is touched."""

    BACKBONES.get(config.model.name)
    ENERGIES.get(config.energy.name)
    SAMPLERS.get(config.sampler.name)
    OBJECTIVES.get(config.objective.name)
    DATASETS.get(_resolve(config.data.name))
    if config.sampler.name != "none":
        INITS.get(config.sampler.buffer.init)


def load_config(preset: str, overrides: list[str] | None = None) -> RunConfig:
    """The preset's validated config with `key=value` overrides, every registry name checked: what
    the commands and the Python API load (`config.load_config` checks the schema only)."""
    config = configs.load_config(preset, overrides)
    check_names(config)
    return config


def override_config(config: RunConfig, overrides: list[str]) -> RunConfig:
    """`config` with `key=value` overrides (e.g. one read from a checkpoint), every name checked."""
    config = configs.override_config(config, overrides)
    check_names(config)
    return config


def resolve_device(name: str) -> torch.device:
    """The torch device `name` names; under torchrun also joins the process group and picks this
    rank's GPU (hdgen_cli.distributed)."""

    if name == "auto":
        return dist.setup(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' requested but no CUDA GPU is available; use train.device=cpu")
    return dist.setup(device)


def build_model(config: RunConfig, info: DataInfo) -> EnergyModel:
    backbone = build_backbone(config.model, info.channels, info.num_classes or None, info.image_size)
    return build_energy_model(config.energy, backbone, info.num_classes)


def build_p0(config: RunConfig, info: DataInfo, device, **init_context):
    """The initial distribution the config names; data-driven ones read `init_context`."""
    return build_init(config.sampler.buffer.init, info.shape, info.bounds, device, pixel_range=info.pixel_range,
                      **init_context)


def build_buffer(config: RunConfig, info: DataInfo, device, **init_context) -> ReplayBuffer:
    b = config.sampler.buffer
    if info.num_classes and b.size % info.num_classes:
        raise UsageError(f"sampler.buffer.size={b.size} must be a multiple of the {info.num_classes} classes")
    init = build_p0(config, info, device, **init_context)
    return ReplayBuffer(b.size, info.shape, info.num_classes, b.reinit, init, device)


@dataclass
class Run:
    """Everything one training run steps: the model and, for a generative objective, its sampler
    and replay buffer; the objective (bound to the model) and the optimizer over the model."""

    model: EnergyModel
    sampler: object | None
    buffer: ReplayBuffer | None
    objective: Objective
    optimizer: torch.optim.Optimizer
    info: DataInfo


def build_run(config: RunConfig, device, train_set: ImageSet | None = None, info: DataInfo | None = None, *,
              channels_last: bool = False, compile: bool = False, **init_context) -> Run:
    """Assemble the run `config` names on `device`, in a fixed order (model, sampler, buffer,
    objective, optimizer) so a seeded build draws the same initial weights and chains every time.
    `train_set` gives the data's shape (or pass `info`) and feeds a data-driven p0 (the gm init);
    `init_context` goes to the init too (`cache_dir` for the gm init's fitted mixture)."""
    if info is None:
        if train_set is None:
            raise ValueError("build_run needs train_set or info (the data's shape)")
        info = DataInfo.of(train_set, config.data.pixel_range)
    if train_set is not None:
        init_context.setdefault("train_set", train_set)
    model = prepare_model(build_model(config, info).to(device), channels_last, compile)
    sampler = build_sampler(config.sampler, info) if config.needs_samples else None
    buffer = build_buffer(config, info, device, **init_context) if sampler else None
    objective = build_objective(config.objective, sampler, buffer, info, device)
    objective.bind(model)
    optimizer = build_optimizer(config.optim, model.parameters())
    return Run(model, sampler, buffer, objective, optimizer, info)
