"""The fast paths: bf16 autocast, channels-last memory and torch.compile, switched by
`train.precision` (fp32 by default), `train.channels_last` (auto: on for a CPU) and `train.compile`
(off by default).

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


def use_channels_last(setting: bool | str, device: torch.device | str) -> bool:
    """`train.channels_last` resolved for a device. `auto` is on for a CPU, where every preset's
    training step measured 1.05-1.39x faster in channels-last (benchmarks/cpu_fast_paths.py), and
    off for a GPU, where it has not been measured yet. A resumed run resolves the same way on the
    same device, so it continues bit for bit."""
    if setting == "auto":
        return torch.device(device).type == "cpu"
    return bool(setting)


def prepare_model(model: torch.nn.Module, channels_last: bool, compile: bool) -> torch.nn.Module:
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        first = getattr(model.backbone, "first_layer", None)
        for child in model.backbone.children():
            if child is not first:
                child.compile()
    return model
