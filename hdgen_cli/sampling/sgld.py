"""Stochastic-gradient Langevin dynamics on an energy (JEM; docs/methods/jem.md).

One step:  x <- x - a * clamp(grad_x sum_b E(x_b), -c, c) + s * eps,  then optionally clamp x.
For the logit energy, -grad E = grad LSE, so this ascends LSE exactly as JEM does. The gradient
is taken of the batch sum, so the step size is per sample (docs/methods/shared.md, notation). With a gradient clamp and
an x clamp this is the proximal SGLD of [JEM++] eq. 10; `noise_after_clamp` picks the JEM++
order (step, clamp x, then noise) over the SADA order (step, noise, then clamp x).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

from hdgen_cli.data.strong_aug import StrongAugment
from hdgen_cli.models.norm import frozen_running_stats
from hdgen_cli.sampling.registry import register_sampler

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def energy_grad(energy_fn: EnergyFn, x: torch.Tensor) -> torch.Tensor:
    """grad_x of sum_b E(x_b). Only the input gradient is computed: parameters get nothing."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(energy_fn(x).sum(), x)
    return grad


def sgld_step(
    x: torch.Tensor,
    grad: torch.Tensor,
    step_size: float,
    noise: float,
    grad_clamp: float | None = None,
    bounds: tuple[float, float] | None = None,
    noise_after_clamp: bool = False,
) -> torch.Tensor:
    """One SGLD update given grad = grad_x sum E."""
    if grad_clamp is not None:
        grad = grad.clamp(-grad_clamp, grad_clamp)
    x = x - step_size * grad
    if noise > 0 and not noise_after_clamp:
        x = x + noise * torch.randn_like(x)
    if bounds is not None:
        x = x.clamp(*bounds)
    if noise > 0 and noise_after_clamp:  # JEM++: noise is added after the clamp and not re-clamped
        x = x + noise * torch.randn_like(x)
    return x.detach()


@contextmanager
def input_gradients_only(model: nn.Module):
    """Parameters stop requiring gradients for the duration, so sampler passes record no autograd
    edges to the weights (no weight-gradient bookkeeping, no AccumulateGrad); restored after."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextmanager
def model_mode(model: nn.Module, mode: str, freeze_bn_stats: bool = False):
    """Run a sampler with the model in `mode` ("eval" or "train"), then restore its mode.

    In train mode BatchNorm uses the chains' batch statistics (JEM++, SADA); `freeze_bn_stats`
    keeps those passes from updating the running statistics. Sampler passes differentiate the
    input only (`input_gradients_only`).
    """
    was_training = model.training
    model.train(mode == "train")
    try:
        with frozen_running_stats(model, enabled=freeze_bn_stats and mode == "train"), input_gradients_only(model):
            yield
    finally:
        model.train(was_training)


class SGLDSampler:
    """K steps of SGLD from given starting points; `y` selects the conditional energy E(x, y).

    `transition` (CLEL's augmentation transition, [CLEL] App. B) is applied to the chains before
    the steps and again every `self.steps` steps of a longer run, so a training call of K steps
    gets exactly one and a 600-step generation run gets one every K. `energy_fn` replaces the
    model's energy (latent-conditional sampling).
    """

    def __init__(self, steps: int, step_size: float, noise: float, grad_clamp: float | None = None,
                 bounds: tuple[float, float] | None = None, mode: str = "eval", noise_after_clamp: bool = False,
                 freeze_bn_stats: bool = False, transition=None):
        self.steps, self.step_size, self.noise = steps, step_size, noise
        self.grad_clamp, self.bounds, self.mode = grad_clamp, bounds, mode
        self.noise_after_clamp, self.freeze_bn_stats = noise_after_clamp, freeze_bn_stats
        self.transition = transition

    def run(self, model, x: torch.Tensor, y: torch.Tensor | None = None, steps: int | None = None,
            energy_fn: EnergyFn | None = None, on_step=None) -> torch.Tensor:
        if energy_fn is None:
            def energy_fn(inp):
                return model.energy(inp, y)

        x = x.detach()
        with model_mode(model, self.mode, self.freeze_bn_stats):
            for k in range(self.steps if steps is None else steps):
                if self.transition is not None and k % self.steps == 0:
                    with torch.no_grad():
                        x = self.transition(x)
                x = sgld_step(x, energy_grad(energy_fn, x), self.step_size, self.noise, self.grad_clamp, self.bounds,
                              self.noise_after_clamp)
                if on_step is not None:
                    on_step()
        return x.detach()


@register_sampler("sgld")
def build_sgld(s, info) -> SGLDSampler:
    """SGLD as `sampler.*` configures it; chains clamped to the data's bounds when `x_clamp`."""
    return SGLDSampler(s.steps, s.step_size, s.noise, s.grad_clamp, info.bounds if s.x_clamp else None, s.model_mode,
                       s.noise_after_clamp, s.freeze_bn_stats, build_transition(s.transition, info.pixel_range))


def build_transition(name: str, pixel_range: str):
    """The chains' augmentation transition: CLEL's strong augmentation, applied in [0, 1]."""
    if name == "none":
        return None
    augment = StrongAugment()
    if pixel_range == "unit":
        return augment
    return lambda x: augment((x + 1) / 2) * 2 - 1
