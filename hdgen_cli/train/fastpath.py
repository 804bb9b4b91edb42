"""The GPU fast path (issue 8): bf16 autocast, channels-last memory and torch.compile, each off by
default and switched by `train.precision`, `train.channels_last` and `train.compile`.

Under bf16 autocast the convolutions and matmuls run in bfloat16 while every energy head returns
float32 energies and scores (the heads cast), so losses, the sampler's input gradients and the
divergence guard stay in float32. `compile` compiles the backbone's parts in place
(`nn.Module.compile`), which keeps state-dict keys unchanged, so checkpoints load with or without
it. The first layer stays eager: PYLD hooks its output to read the co-state p = dE/d f0 (eq. 13),
and a compiled graph hides that intermediate from autograd.
"""

from __future__ import annotations

import torch


def autocast(precision: str, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def prepare_model(model: torch.nn.Module, channels_last: bool, compile: bool) -> torch.nn.Module:
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        first = getattr(model.backbone, "first_layer", None)
        for child in model.backbone.children():
            if child is not first:
                child.compile()
    return model
