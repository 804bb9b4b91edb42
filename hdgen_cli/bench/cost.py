"""Cost per training iteration of each bench preset, timed interleaved: every round runs one step of
every preset back to back, so a slow spell of a shared machine hits all methods alike. The runs'
own wall and CPU times are kept too, but they move with whatever else the machine is doing; the
cost claims read these interleaved medians.

Each preset runs hdgen's own `train_step` on the bench's model and batch sizes with a real batch
of the bench's dataset, in the regime it ends training in (GMMC joint after its switch to
generative training).
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import BatchStream, BatchTransform, make_splits
from hdgen_cli.parts import build_run, resolve_device
from hdgen_cli.train import train_step


def step_fn(cfg: RunConfig, device) -> Callable[[], None]:
    """One training step of `cfg`, ready to call repeatedly (batches drawn once, sampler chains live)."""
    torch.manual_seed(cfg.train.seed)
    train_set = make_splits(cfg.data).train.to(device)
    run = build_run(cfg, device, train_set)
    run.model.train()
    run.objective.epoch, run.objective.iteration, run.objective.total_iters = float(cfg.train.epochs), 1, 10**6

    def batch(sc, offset):
        transform = BatchTransform.from_config(sc, cfg.data, train_set.default_flip)
        return BatchStream(train_set, sc.batch_size, transform, seed=cfg.train.seed + offset).next()

    x_lab, y_lab = batch(cfg.data.ce, 0) if cfg.uses_ce_stream else (None, None)
    x_data = batch(cfg.data.px, 1)[0] if cfg.uses_px_stream else None
    return lambda: train_step(run.model, run.objective, run.optimizer, x_lab, y_lab, x_data)


def clock(fn, device) -> float:
    """Wall seconds of one call of `fn`, with the GPU's queued work included."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_costs(configs: dict[str, RunConfig], device: str = "auto", rounds: int = 7,
                      warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of one training step per preset, one value per round (all presets timed in every round)."""

    dev = resolve_device(device)
    steps = {name: step_fn(cfg, dev) for name, cfg in configs.items()}
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            times[name].append(clock(fn, dev))
    return times
