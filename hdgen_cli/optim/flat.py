"""Optimizer state as flat tensors plus JSON, the form safetensors checkpoints and in-memory
snapshots hold (no pickle), and back."""

from __future__ import annotations

import torch

from hdgen_cli.errors import CheckpointError


def flatten_optimizer(opt: torch.optim.Optimizer, prefix: str = "optim.state") -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as tensors `<prefix>.<i>.<name>` plus JSON (param groups, scalar slots)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict | None,
                        source: str) -> None:
    """Inverse of `flatten_optimizer`; `tensors` are the entries under its prefix, with the prefix removed."""
    if meta is None:
        raise CheckpointError(f"{source} holds no optimizer state; it cannot be resumed")
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value.clone()  # load_state_dict keeps it: never share a snapshot's
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state in {source} does not match the model: {exc}") from None
