"""GMMC's class-conditional sampler ([GMMC] eq. 8 and Algorithm 1 (staged), eq. 10 (noise-injected)).

For a chain of class y, a latent target z ~ N(mu_y, gamma_s^2 I) sits near the class mean, and
the chain descends ||phi(x) - z||^2 / 2 with no pixel noise:

    x <- clamp(x - eta * grad_x ||phi(x) - z||^2 / 2, lo, hi)

Staged sampling draws z once per chain (the paper's reported setting); noise-injected sampling
draws a new z before every step. The two differ only in when z is drawn.
"""

from __future__ import annotations

import torch

from hdgen_cli.sampling.registry import register_sampler
from hdgen_cli.sampling.sgld import energy_grad, model_mode, sgld_step


class GMMCSampler:
    def __init__(self, steps: int, step_size: float, latent_std: float, injected: bool = False,
                 bounds: tuple[float, float] | None = None, mode: str = "eval"):
        self.steps, self.step_size, self.latent_std = steps, step_size, latent_std
        self.injected, self.bounds, self.mode = injected, bounds, mode

    def draw_latent(self, model, y: torch.Tensor) -> torch.Tensor:
        mu = model.means[y]
        return mu + self.latent_std * torch.randn_like(mu)

    def run(self, model, x: torch.Tensor, y: torch.Tensor | None = None, steps: int | None = None,
            on_step=None) -> torch.Tensor:
        """Refine chains `x` of classes `y` (uniform classes when None, as [GMMC] Algorithm 1 draws y')."""
        if y is None:
            y = torch.randint(0, model.means.shape[0], (len(x),), device=x.device)
        x = x.detach()
        z = self.draw_latent(model, y)
        with model_mode(model, self.mode):
            for step in range(self.steps if steps is None else steps):
                if self.injected and step > 0:
                    z = self.draw_latent(model, y)
                grad = energy_grad(lambda inp: model.latent_energy(inp, z), x)
                x = sgld_step(x, grad, self.step_size, 0.0, bounds=self.bounds)
                if on_step is not None:
                    on_step()
        return x


@register_sampler("gmmc")
def build_gmmc(s, info) -> GMMCSampler:
    """GMMC's sampler as `sampler.*` configures it (`latent=injected`: the latent-noise variant)."""
    return GMMCSampler(s.steps, s.step_size, s.latent_std, s.latent == "injected", info.bounds if s.x_clamp else None,
                       s.model_mode)
