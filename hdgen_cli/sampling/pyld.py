"""PYLD-M-N: proximal SGLD accelerated YOPO-style ([JEM++] §3.3, Algorithm 1).

Each of the M outer steps runs one full forward/backward pass to get the co-state (slack
variable) p = dE/d f0(x) at the output of the backbone's first layer f0, eq. 13. The N inner
steps then move x using only the first layer:

    g = clamp(p . d f0(x)/dx, -eps, eps),   x <- clamp(x - eta * g, lo, hi)

and noise sigma * N(0, I) is added after the inner loop (not re-clamped). The inner steps cost
one first-layer forward/backward each, so a call costs about M full passes, not M x N. For a
linear first layer (conv or linear) p . d f0/dx is exactly the full input gradient, so PYLD with
N = 1 is proximal SGLD with the same step.

For such a linear stem p . d f0/dx = W^T p does not depend on x, so the N inner steps would
recompute one vector N times; it is computed once per outer step instead (`linear_stem`). The
result is the same bit for bit (the same operation on the same p and W), at N - 1 fewer passes.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from hdgen_cli.sampling.registry import register_sampler
from hdgen_cli.sampling.sgld import model_mode


def first_layer_costate(model, first_layer: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """p = d(sum_b E(x_b)) / d f0(x): one full forward/backward, stopped at the first layer's output."""
    captured = []
    handle = first_layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.enable_grad():
            energy = model.energy(x.detach().requires_grad_(True), y).sum()
            (p,) = torch.autograd.grad(energy, captured[0])
    finally:
        handle.remove()
    return p


def first_layer_vjp(first_layer: torch.nn.Module, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """p . d f0(x)/dx through the first layer only (a cheap transposed conv for a conv stem)."""
    with torch.enable_grad():
        xs = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(first_layer(xs), xs, grad_outputs=p)
    return g


def linear_stem(first_layer: torch.nn.Module) -> bool:
    """Whether d f0/dx is a constant: a plain conv or linear layer whose weight no forward recomputes
    (a parametrization such as spectral norm runs a power iteration on every call, so it does not count)."""
    plain = type(first_layer) in (torch.nn.Conv2d, torch.nn.Linear)
    return plain and not parametrize.is_parametrized(first_layer) and not first_layer._forward_pre_hooks \
        and not first_layer._forward_hooks


class PYLDSampler:
    def __init__(self, steps: int, inner_steps: int, step_size: float, noise: float, grad_clamp: float | None,
                 bounds: tuple[float, float] | None, mode: str = "train", freeze_bn_stats: bool = False,
                 shortcut: bool = True):
        self.steps, self.inner_steps, self.step_size, self.noise = steps, inner_steps, step_size, noise
        self.shortcut = shortcut  # False: the general path, kept for the exactness test
        self.grad_clamp, self.bounds, self.mode, self.freeze_bn_stats = grad_clamp, bounds, mode, freeze_bn_stats

    def run(self, model, x: torch.Tensor, y: torch.Tensor | None = None, steps: int | None = None,
            on_step=None) -> torch.Tensor:
        first = model.backbone.first_layer
        once = self.shortcut and linear_stem(first)
        x = x.detach()
        with model_mode(model, self.mode, self.freeze_bn_stats):
            for _ in range(self.steps if steps is None else steps):
                p = first_layer_costate(model, first, x, y)
                g = None
                for _ in range(self.inner_steps):
                    if g is None or not once:  # with a linear stem, W^T p (clamped) serves every inner step
                        g = first_layer_vjp(first, x, p)
                        if self.grad_clamp is not None:
                            g = g.clamp(-self.grad_clamp, self.grad_clamp)
                    x = x - self.step_size * g
                    if self.bounds is not None:
                        x = x.clamp(*self.bounds)
                if self.noise > 0:
                    x = x + self.noise * torch.randn_like(x)
                if on_step is not None:
                    on_step()
        return x.detach()


@register_sampler("pyld")
def build_pyld(s, info) -> PYLDSampler:
    """PYLD as `sampler.*` configures it (`inner_steps` first-layer updates per outer step)."""
    return PYLDSampler(s.steps, s.inner_steps, s.step_size, s.noise, s.grad_clamp, info.bounds if s.x_clamp else None,
                       s.model_mode, s.freeze_bn_stats)
