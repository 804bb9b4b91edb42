"""Build the parts a RunConfig names: device, model (backbone + energy head), sampler, buffer.

The trainer and every command assemble a run from here, so a method is a composition of
registered parts and the trainer never knows which paper it runs (ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import data_bounds
from hdgen_cli.energy import EnergyModel, build_energy_model
from hdgen_cli.errors import UsageError
from hdgen_cli.models import build_backbone
from hdgen_cli.sampling import GMMCSampler, PYLDSampler, ReplayBuffer, SGLDSampler, build_init


@dataclass(frozen=True)
class DataInfo:
    """What a checkpoint must know about its data to rebuild the model without loading it."""

    channels: int
    image_size: int
    num_classes: int
    pixel_range: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def bounds(self) -> tuple[float, float]:
        return data_bounds(self.pixel_range)

    def to_dict(self) -> dict:
        return asdict(self)


def check_names(config: RunConfig) -> None:
    """Every registry name the config holds exists (model, energy, dataset, buffer init), so a typo
    is a usage error before a run directory or a dataset is touched."""
    from hdgen_cli.data.registry import DATASETS, _resolve
    from hdgen_cli.energy.base import ENERGIES
    from hdgen_cli.models.registry import BACKBONES
    from hdgen_cli.sampling.init import INITS

    BACKBONES.get(config.model.name)
    ENERGIES.get(config.energy.name)
    DATASETS.get(_resolve(config.data.name))
    if config.sampler.name != "none":
        INITS.get(config.sampler.buffer.init)


def resolve_device(name: str) -> torch.device:
    """The torch device `name` names; under torchrun also joins the process group and picks this
    rank's GPU (hdgen_cli.distributed)."""
    from hdgen_cli.distributed import setup

    if name == "auto":
        return setup(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' requested but no CUDA GPU is available; use train.device=cpu")
    return setup(device)


def build_model(config: RunConfig, info: DataInfo) -> EnergyModel:
    backbone = build_backbone(config.model, info.channels, info.num_classes or None, info.image_size)
    return build_energy_model(config.energy, backbone, info.num_classes)


def build_sampler(config: RunConfig, info: DataInfo) -> SGLDSampler | PYLDSampler | GMMCSampler | None:
    s = config.sampler
    bounds = info.bounds if s.x_clamp else None
    if s.name == "sgld":
        return SGLDSampler(s.steps, s.step_size, s.noise, s.grad_clamp, bounds, s.model_mode, s.noise_after_clamp,
                           s.freeze_bn_stats, build_transition(s.transition, info.pixel_range))
    if s.name == "pyld":
        return PYLDSampler(s.steps, s.inner_steps, s.step_size, s.noise, s.grad_clamp, bounds, s.model_mode,
                           s.freeze_bn_stats)
    if s.name == "gmmc":
        return GMMCSampler(s.steps, s.step_size, s.latent_std, s.latent == "injected", bounds, s.model_mode)
    return None


def build_transition(name: str, pixel_range: str):
    """The chains' augmentation transition: CLEL's strong augmentation, applied in [0, 1]."""
    if name == "none":
        return None
    from hdgen_cli.data.strong_aug import StrongAugment

    augment = StrongAugment()
    if pixel_range == "unit":
        return augment
    return lambda x: augment((x + 1) / 2) * 2 - 1


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
