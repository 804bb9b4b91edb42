"""JEM-family logit energy (JEM; [JEM++] eqs. 4-5).

p(y|x) = softmax(f(x)),  E(x, y) = -f(x)[y],  E(x) = -LSE_y f(x)[y].
"""

from __future__ import annotations

import torch

from hdgen_cli.energy.base import EnergyModel, register_energy
from hdgen_cli.errors import UsageError


@register_energy("logits")
class LogitEnergy(EnergyModel):
    def __init__(self, backbone, cfg=None, num_classes: int | None = None):
        super().__init__(backbone)
        if getattr(backbone, "num_classes", None) is None:
            raise UsageError("the logits energy needs a classifier head; set model.head=true")

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).float()  # float32 even under bf16 autocast

    def energy_from_scores(self, scores: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            return -torch.logsumexp(scores, dim=1)
        # gather gives [B, 1]; squeeze before mixing with [B] tensors.
        return -scores.gather(1, y.view(-1, 1)).squeeze(1)
