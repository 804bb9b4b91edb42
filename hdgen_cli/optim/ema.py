"""Exponential moving average of a network's weights (CLEL's EMA, [CLEL] App. B).

The decay is set by a half-life counted in training images, so it does not depend on the batch
size: after `half_life` images an old weight's share has halved, i.e. per iteration of B images

    decay = 0.5 ** (B / half_life)        (B = 64, half-life 20 000: 0.997784)

For the first `copy_iters` iterations the average is a plain copy of the online weights (an
average over a young, fast-changing network is mostly its random init). Buffers (spectral-norm
power-iteration vectors, BatchNorm statistics) are always copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(batch_size: int, half_life: float) -> float:
    return 0.5 ** (batch_size / half_life)


class EMA:
    def __init__(self, model: nn.Module, batch_size: int, half_life: float, copy_iters: int = 0):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.copy_iters = ema_decay(batch_size, half_life), copy_iters

    @torch.no_grad()
    def update(self, online: nn.Module, iteration: int) -> None:
        """Fold the online weights in after optimizer step `iteration` (1-based)."""
        d = 0.0 if iteration <= self.copy_iters else self.decay
        for avg, cur in zip(self.model.parameters(), online.parameters()):
            avg.lerp_(cur.detach(), 1.0 - d)
        for avg, cur in zip(self.model.buffers(), online.buffers()):
            avg.copy_(cur)
