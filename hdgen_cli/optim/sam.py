"""Sharpness-aware minimisation around any base optimizer ([SADA] Algorithm 1, eq. 8-9).

Two explicit steps per iteration, like the reference SAM wrapper's API:

    loss(θ).backward();   sam.first_step()    # θ <- θ + e,  e = ρ g / (||g||_2 + 1e-12)
    loss(θ + e).backward(); sam.second_step() # θ <- θ - e, then the base step with the new gradient

ASAM (adaptive) uses e = ρ T² g / ||T g|| with T = |θ|, so the neighbourhood scales with each
weight. The norm runs over all parameters together; weight decay lives only in the base step.
"""

from __future__ import annotations

import torch


class SAM:
    def __init__(self, base: torch.optim.Optimizer, rho: float, adaptive: bool = False, eps: float = 1e-12):
        if rho <= 0:
            raise ValueError("SAM needs rho > 0")
        self.base, self.rho, self.adaptive, self.eps = base, rho, adaptive, eps
        self._perturbation: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def param_groups(self):
        return self.base.param_groups

    def _params(self):
        return [p for group in self.base.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def perturbation(self) -> list[torch.Tensor]:
        """e for every parameter with a gradient, from the current gradients."""
        params = self._params()
        scaled = [(p.abs() * p.grad if self.adaptive else p.grad) for p in params]  # T g
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in scaled]))
        scale = self.rho / (norm + self.eps)
        return [(p.abs() * t if self.adaptive else t) * scale for p, t in zip(params, scaled)]  # T (T g) rho/||T g||

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        params = self._params()
        self._perturbation = list(zip(params, self.perturbation()))
        for p, e in self._perturbation:
            p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        for p, e in self._perturbation:
            p.sub_(e)
        self._perturbation = []
        self.base.step()
        if zero_grad:
            self.zero_grad()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state) -> None:
        self.base.load_state_dict(state)
