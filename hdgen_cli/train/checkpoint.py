"""Checkpoints: one safetensors file, never pickle.

Tensors are namespaced (`model.`, `optim.state.<i>.`, `buffer.`, `stream.<name>.`, `rng.`);
everything else (the resolved config, data shape, training position, optimizer hyperparameters)
is JSON in the safetensors metadata, so a checkpoint alone rebuilds the run. Files are written
to a temporary name and renamed, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hdgen_cli import __version__
from hdgen_cli.config.presets import validate
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.errors import CheckpointError
from hdgen_cli.objectives.base import section
from hdgen_cli.parts import DataInfo

FORMAT = "hdgen-checkpoint-1"
LAST, BEST = "last.safetensors", "best.safetensors"


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


# ---------------------------------------------------------------- optimizer state <-> flat tensors
def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.state.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    meta = ckpt.meta.get("optim")
    if meta is None:
        raise CheckpointError(f"{ckpt.path} holds no optimizer state; it cannot be resumed")
    state: dict[int, dict] = {}
    for key, value in ckpt.section("optim.state").items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state in {ckpt.path} does not match the model: {exc}") from None


# ---------------------------------------------------------------- save / load
def save_checkpoint(path: str | Path, *, model: torch.nn.Module, config: RunConfig, info: DataInfo,
                    position: dict, optimizer: torch.optim.Optimizer | None = None, buffer=None,
                    streams: dict | None = None, extra: dict[str, torch.Tensor] | None = None) -> Path:
    path = Path(path)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "hdgen_version": __version__, "config": config.model_dump(mode="json"),
            "data_info": info.to_dict(), "position": position}
    if optimizer is not None:
        opt_tensors, meta["optim"] = _flatten_optimizer(optimizer)
        tensors.update(opt_tensors)
    if buffer is not None:
        tensors.update({f"buffer.{k}": v for k, v in buffer.state_dict().items()})
    for name, stream in (streams or {}).items():
        tensors.update({f"stream.{name}.{k}": v for k, v in stream.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    tensors.update(extra or {})
    # safetensors wants contiguous CPU tensors that share no memory.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its last checkpoint)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; pass a .safetensors file or a run directory from `hdgen train`")
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = resolve_checkpoint_path(path)
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

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
    state = ckpt.section("model")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{ckpt.path} does not match its model config ({what}); it was saved by another model")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{ckpt.path}: tensor {key} has shape {tuple(value.shape)}, model expects {tuple(expected[key].shape)}")
    model.load_state_dict(state)


def restore_rng(ckpt: Checkpoint) -> None:
    if "rng.torch" in ckpt.tensors:
        torch.set_rng_state(ckpt.tensors["rng.torch"])
    cuda = ckpt.section("rng.cuda")
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([cuda[str(i)] for i in range(min(len(cuda), torch.cuda.device_count()))])
