"""Base optimizers and the warmup + step-decay schedule (SPEC §1.5)."""

from __future__ import annotations

import torch

from hdgen_cli.config.schema import OptimConfig


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_at(cfg: OptimConfig, iteration: int, epoch: int) -> float:
    """Learning rate for 1-based `iteration` in 0-based `epoch`.

    Warmup is linear, lr * t / W for t <= W. (The official code starts at t = 0, so its first step
    uses lr = 0; hdgen's first step already learns.) Step decay multiplies by `decay_rate` at the
    start of every epoch listed in `decay_epochs`.
    """
    lr = cfg.lr * cfg.decay_rate ** sum(1 for e in cfg.decay_epochs if epoch >= e)
    if cfg.warmup_iters and iteration <= cfg.warmup_iters:
        lr *= iteration / cfg.warmup_iters
    return lr
