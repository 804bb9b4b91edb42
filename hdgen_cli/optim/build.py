"""Base optimizers, the SAM wrapper, and the warmup + step-decay or cosine schedule (docs/methods/shared.md)."""

from __future__ import annotations

import math

import torch

from hdgen_cli.config.schema import OptimConfig
from hdgen_cli.optim.sam import SAM


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer | SAM:
    """The base optimizer, wrapped in SAM when optim.sam_rho > 0."""
    params = [p for p in params if p.requires_grad]
    if cfg.name == "sgd":
        base = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    else:
        base = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return SAM(base, cfg.sam_rho, cfg.sam_adaptive) if cfg.sam_rho > 0 else base


def lr_at(cfg: OptimConfig, iteration: int, epoch: int, total_iters: int | None = None) -> float:
    """Learning rate for 1-based `iteration` in 0-based `epoch`.

    Warmup is linear, lr * t / W for t <= W. (The official code starts at t = 0, so its first step
    uses lr = 0; hdgen's first step already learns.) After warmup, "step" multiplies by
    `decay_rate` at the start of every epoch in `decay_epochs`; "cosine" anneals from lr to 0
    over the post-warmup iterations, stepped per iteration ([SADA] §4.1 option).
    """
    if cfg.warmup_iters and iteration <= cfg.warmup_iters:
        return cfg.lr * iteration / cfg.warmup_iters
    if cfg.schedule == "cosine":
        if total_iters is None:
            raise ValueError("the cosine schedule needs the total number of iterations")
        span = max(total_iters - cfg.warmup_iters, 1)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * (iteration - cfg.warmup_iters) / span))
    return cfg.lr * cfg.decay_rate ** sum(1 for e in cfg.decay_epochs if epoch >= e)
