"""A model rebuilt from its checkpoint alone: what every command and evaluation starts from.

Below `train` and `api` (the live FID's judge and every command load models here); it imports
only the checkpoint format and the parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hdgen_cli.checkpoint import Checkpoint, load_checkpoint, load_model_state
from hdgen_cli.config import load_config
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.errors import CheckpointError, UsageError
from hdgen_cli.models.encoder import build_encoder
from hdgen_cli.models.fastpath import prepare_model, use_channels_last
from hdgen_cli.parts import DataInfo, build_model, check_names, resolve_device


@dataclass
@dataclass
class LoadedModel:
    model: torch.nn.Module
    checkpoint: Checkpoint

    @property
    def config(self) -> RunConfig:
        return self.checkpoint.config

    @property
    def info(self) -> DataInfo:
        return self.checkpoint.info


def open_checkpoint(path: str | Path | Checkpoint) -> Checkpoint:
    """A checkpoint (a file or a run folder) whose config names only parts this hdgen has; one
    CheckpointError naming the file otherwise (the format itself cannot know the registries)."""
    ckpt = path if isinstance(path, Checkpoint) else load_checkpoint(path)
    try:
        check_names(ckpt.config)
    except UsageError as exc:
        what = str(exc).split(" (set ")[0]
        raise CheckpointError(f"{ckpt.path} names a part this hdgen does not have ({what}); it was not written by "
                              "this hdgen version") from None
    return ckpt


def load_model(path: str | Path, device: str = "auto", ema: bool = True) -> LoadedModel:
    """Rebuild a model from a checkpoint alone (no preset needed), in eval mode. Runs that keep an EMA
    copy (CLEL) load its weights unless `ema=False`: evaluation and sampling use the average. The
    weights take the memory layout the run's `train.channels_last` gives this device."""
    ckpt = open_checkpoint(path)
    model = build_model(ckpt.config, ckpt.info)
    load_model_state(model, ckpt)
    averaged = ckpt.section("objective.ema_model")
    if ema and averaged:
        model.load_state_dict(averaged)
    device = resolve_device(device)
    prepare_model(model, use_channels_last(ckpt.config.train.channels_last, device), compile=False)
    return LoadedModel(model.to(device).eval(), ckpt)


def load_encoder(loaded: LoadedModel, device, what: str = "--like"):
    """CLEL's EMA latent encoder h from a checkpoint, in eval mode."""

    weights = loaded.checkpoint.section("objective.ema_encoder")
    if loaded.config.objective.name != "clel" or not weights:
        raise UsageError(f"{what} needs a CLEL checkpoint (it uses the latent encoder)")
    encoder = build_encoder(loaded.info.channels, loaded.config.objective.clel.encoder_width)
    encoder.load_state_dict(weights)
    return encoder.to(device).eval()


def with_sampler(cfg: RunConfig) -> RunConfig:
    """`cfg`, or for a run trained without a sampler a copy with one: the gmmc-gen preset's sampler
    for the mmc head, the jem preset's SGLD for logits (a classifier is an EBM too)."""
    if cfg.sampler.name != "none":
        return cfg
    source = "gmmc-gen" if cfg.energy.name == "mmc" else "jem"  # the paper's own sampler for that head
    return cfg.model_copy(update={"sampler": load_config(source).sampler})


def load_feature_classifier(path: str | Path, shape: tuple, device) -> LoadedModel:
    """A classifier checkpoint for `shape` images whose features and p(y|x) stand in for Inception's
    (FID/IS on data Inception was not trained for)."""
    judge = load_model(path, str(device))
    if not judge.model.has_classifier or judge.info.shape != tuple(shape):
        raise UsageError(f"features checkpoint {path} must be a classifier for {'x'.join(map(str, shape))} images")
    return judge
