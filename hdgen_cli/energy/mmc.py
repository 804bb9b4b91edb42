"""Max-Mahalanobis energy head of GMMC ([GMMC] eqs. 4, 11, Appendix C Algorithm 2).

The classes sit at C fixed means mu_c of norm S in the feature space (never trained), and

    E_gamma(x, y) = ||phi(x) - mu_y||^2 / (2 gamma^2),   p(y|x) = softmax_y(-E_gamma(x, y)),
    E_gamma(x)    = -LSE_y(-E_gamma(x, y))   (log p(x) up to a constant).

Training uses gamma = 1 (the paper absorbs gamma into the learning rate): every GMMC loss is
written with `half_sq_distances`, which does not depend on gamma. After training gamma^2 is
estimated from the training set (`calibrate`, [GMMC] §3.4) and stored in the `gamma`
buffer, so the checkpoint carries it and every probabilistic evaluation uses gamma-hat.
"""

from __future__ import annotations

import math

import torch

from hdgen_cli.data import to_model_range
from hdgen_cli.energy.base import EnergyModel, register_energy
from hdgen_cli.errors import UsageError


def max_mahalanobis_means(num_classes: int, dim: int, scale: float) -> torch.Tensor:
    """C means in R^d with ||mu_i|| = S and <mu_i, mu_j> = -S^2/(C-1) ([GMMC] Algorithm 2).

    mu_1 = e_1; mu_i[j] = -(1 + <mu_i, mu_j>(C-1)) / (mu_j[j](C-1)) for j < i; then
    mu_i[i] = sqrt(|1 - ||mu_i||^2|) (the |.| guards a tiny negative at i = C). With d = C - 1 the
    last mean's own coordinate is zero and has no slot, so d >= C - 1 suffices.
    """
    C, d = num_classes, dim
    if C < 2:
        raise UsageError(f"Max-Mahalanobis means need at least 2 classes, got {C}")
    if d < C - 1:
        raise UsageError(f"Max-Mahalanobis means for {C} classes need a feature dimension of at least {C - 1}, "
                         f"but the backbone gives {d}; use a wider backbone (model.width)")
    mu = torch.zeros(C, d, dtype=torch.float64)
    mu[0, 0] = 1.0
    for i in range(1, C):
        for j in range(i):
            mu[i, j] = -(1 + (mu[i] @ mu[j]) * (C - 1)) / (mu[j, j] * (C - 1))
        if i < d:
            mu[i, i] = math.sqrt(abs(1 - float(mu[i] @ mu[i])))
    return (scale * mu).float()


@register_energy("mmc")
class MMCEnergy(EnergyModel):
    """phi(x) = backbone.features(x) against fixed means; scores are -E_gamma(x, y) for every y."""

    forward_methods = ("scores", "energy", "half_sq_distances", "latent_energy")

    def __init__(self, backbone, cfg, num_classes: int):
        super().__init__(backbone)
        if getattr(backbone, "head", None) is not None:
            raise UsageError("the mmc energy uses the backbone's features, not a classifier head; set model.head=false")
        dim = getattr(backbone, "feature_dim", None)
        if not dim:
            raise UsageError(f"the mmc energy needs a backbone with a feature vector; {type(backbone).__name__} has none")
        if not num_classes:
            raise UsageError("the mmc energy needs a labelled dataset")
        # Buffers, not parameters: no optimizer, weight decay or gradient ever reaches them.
        self.register_buffer("means", max_mahalanobis_means(num_classes, dim, cfg.mmc_scale))
        self.register_buffer("gamma", torch.ones(()))
        self.num_classes = num_classes

    def half_sq_distances(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C] matrix of ||phi(x) - mu_c||^2 / 2 (gamma = 1)."""
        phi = self.backbone.features(x).float()  # float32 even under bf16 autocast
        # The direct difference, not ||phi||^2 - 2 phi.mu + ||mu||^2, which cancels badly at large distances.
        return 0.5 * (phi.unsqueeze(1) - self.means).pow(2).sum(-1)

    def latent_energy(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """||phi(x) - z||^2 / 2 per sample: the GMMC sampler's target ([GMMC] eq. 8)."""
        return 0.5 * (self.backbone.features(x).float() - z).pow(2).sum(-1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return -self.half_sq_distances(x) / self.gamma.pow(2)

    def energy_from_scores(self, scores: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            return -torch.logsumexp(scores, dim=1)
        return -scores.gather(1, y.view(-1, 1)).squeeze(1)

    @torch.no_grad()
    def calibrate(self, data, pixel_range: str, batch_size: int = 500) -> dict[str, float]:
        """gamma-hat^2 = (1/d) mean_i ||phi(x_i) - mu_{y_i}||^2 over `data` (an ImageSet; the trainer
        passes the non-augmented training split), in eval mode ([GMMC] §3.4). Stores
        gamma-hat in the `gamma` buffer, so every later p(y|x) and log p(x) uses it."""
        was_training = self.training
        self.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.means.device)
        try:
            for start in range(0, len(data), batch_size):
                x = to_model_range(data.images[start:start + batch_size].to(self.means.device), pixel_range)
                y = data.labels[start:start + batch_size].to(self.means.device)
                total += 2 * self.half_sq_distances(x).gather(1, y.view(-1, 1)).double().sum()
        finally:
            self.train(was_training)
        # A floor keeps p(y|x) defined if every feature sat exactly on its mean.
        gamma = max(math.sqrt(float(total) / (len(data) * self.means.shape[1])), 1e-6)
        self.gamma.fill_(gamma)
        return {"gamma": gamma}
