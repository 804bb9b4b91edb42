"""CLEL's spherical latent-variable energy ([CLEL] §3.2, eqs. 10-11).

With f(x) in R^128 from the backbone, f_hat = f / ||f|| and g the bias-free projector with a
unit-norm output,

    E(x, z) = ||f(x)||^2 / 2 - beta * g(f_hat(x))^T z,   ||z|| = 1,
    E(x)    = ||f(x)||^2 / 2 + const            (the vMF normaliser does not depend on x),

so p(z|x) is von Mises-Fisher with mean direction g(f_hat(x)) and concentration beta. CLEL is
unsupervised: there is no p(y|x), and `has_classifier` is False so nothing asks for one.
Conditional and compositional sampling use E(x | z_1..z_A) = ||f||^2 / 2 - beta_c sum_a cos(g, z_a).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.energy.base import EnergyModel, register_energy
from hdgen_cli.errors import UsageError
from hdgen_cli.models.clel import Projector


@register_energy("spherical")
class SphericalLatentEnergy(EnergyModel):
    has_classifier = False

    forward_methods = ("scores", "energy", "features", "direction", "conditional_energy")

    def __init__(self, backbone, cfg, num_classes: int | None = None):
        super().__init__(backbone)

        dim = getattr(backbone, "feature_dim", None)
        if not dim or getattr(backbone, "head", None) is not None:
            raise UsageError("the spherical energy needs a headless backbone with a feature vector; "
                             "use model.name=clel_small/clel_base/clel_large")
        self.projector = Projector(dim)
        self.beta = cfg.latent_beta

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x), float32 even under bf16 autocast."""
        return self.backbone.features(x).float()

    def direction(self, f: torch.Tensor) -> torch.Tensor:
        """g(f_hat): the unit mean direction of p(z|x) (the projector normalises its output)."""
        return self.projector(F.normalize(f, dim=1))

    def energy(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            raise UsageError("the spherical energy has no classes; condition on latents (hdgen sample --like)")
        return 0.5 * self.features(x).pow(2).sum(1)

    def conditional_energy(self, x: torch.Tensor, z: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """||f||^2 / 2 - beta * sum_a cos(g(f_hat), z_a) for latents z [A, D] (or [D]) shared by the batch."""
        f = self.features(x)
        z = F.normalize(z.reshape(-1, z.shape[-1]), dim=1)
        return 0.5 * f.pow(2).sum(1) - (self.beta if beta is None else beta) * (self.direction(f) @ z.T).sum(1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raise UsageError("this model (spherical latent energy, CLEL) has no classifier; it has no p(y|x)")
