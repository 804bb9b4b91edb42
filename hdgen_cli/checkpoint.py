"""Checkpoints: one safetensors file, never pickle.

The tensors are a `TrainingState` capture (namespaces in train/state.py); everything else (the
resolved config, data shape, training position, optimizer hyperparameters) is JSON in the
safetensors metadata, so a checkpoint alone rebuilds the run. Files are written to a temporary
name, fsynced and renamed, so a kill mid-write leaves the previous checkpoint intact.
Nothing but safetensors and JSON is ever read: no pickle, no `torch.load`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hdgen_cli import __version__
from hdgen_cli.config.presets import validate
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import DataInfo
from hdgen_cli.errors import CheckpointError
from hdgen_cli.files import write_atomically
from hdgen_cli.optim.flat import unflatten_optimizer
from hdgen_cli.runs import resolve_checkpoint_path
from hdgen_cli.tensors import section

FORMAT = "hdgen-checkpoint-1"


@dataclass
class Captured:
    """One captured training state: where training stood, its tensors (flat, namespaced as in
    train/state.py) and the optimizer's JSON side. What a checkpoint holds."""

    iteration: int
    tensors: dict[str, torch.Tensor]
    optim_meta: dict | None = None


@dataclass
class Checkpoint:
    path: Path
    config: RunConfig
    info: DataInfo
    position: dict
    tensors: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under `prefix.` with the prefix removed."""
        return section(self.tensors, prefix)

    def captured(self) -> Captured:
        """The training state in the form `TrainingState.restore` takes."""
        return Captured(self.position.get("iteration", 0), self.tensors, self.meta.get("optim"))


def load_optimizer_state(opt: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    unflatten_optimizer(opt, ckpt.section("optim.state"), ckpt.meta.get("optim"), str(ckpt.path))


# ---------------------------------------------------------------- save / load
def save_checkpoint(path: str | Path, captured: Captured, *, config: RunConfig, info: DataInfo,
                    position: dict) -> Path:
    """Write a `TrainingState.capture()` with the config, data shape and training position.
    Crash-safe: a temporary file, fsynced, renamed over `path` (see `write_atomically`)."""
    meta = {"format": FORMAT, "hdgen_version": __version__, "config": config.model_dump(mode="json"),
            "data_info": info.to_dict(), "position": position}
    if captured.optim_meta is not None:
        meta["optim"] = captured.optim_meta
    # safetensors wants contiguous CPU tensors that share no memory (captures are copies already).
    tensors = {k: v.to("cpu").contiguous() for k, v in captured.tensors.items()}
    metadata = {k: json.dumps(v) for k, v in meta.items()}
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = resolve_checkpoint_path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            raw_meta = fh.metadata() or {}
        meta = {k: json.loads(v) for k, v in raw_meta.items()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable hdgen checkpoint ({first}); it may be truncated or corrupt") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an hdgen checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        config = validate(meta["config"], f"checkpoint {path}")
        info = DataInfo(**meta["data_info"])
    except Exception as exc:  # noqa: BLE001 - any malformed metadata is one error for the user
        raise CheckpointError(f"{path} has unusable metadata ({exc}); it was not written by this hdgen version") from None
    return Checkpoint(path, config, info, meta.get("position", {}), tensors, meta)


def load_model_state(model: torch.nn.Module, ckpt: Checkpoint) -> None:
    load_checked(model, ckpt.section("model"), str(ckpt.path), "it was saved by another model")


def load_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str, why: str) -> None:
    """Load `state` into `model` after checking that every key is expected and every shape fits."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{where} does not match its model config ({what}); {why}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{where}: tensor {key} has shape {tuple(value.shape)}, model expects {tuple(expected[key].shape)}")
    model.load_state_dict(state)
