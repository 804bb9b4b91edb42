"""JEM objective: CE + p(x) contrastive divergence (+ optional p(x|y)) (SPEC §2.2; [JEM++] Alg. 2).

    L = w_ce CE(f(x_lab), y) + w_px [mean E(x_data) - mean E(x_q)] + w_pxy [mean E(x_lab, y) - mean E(x_q|y, y)]

x_q are sampler outputs started from the replay buffer and written back after sampling. The
order of forward passes (data, sample, samples, CE) follows JEM++'s "alltrain1" so BatchNorm
running statistics see the same sequence as the official code (SPEC §2.3). Each pass is its own
BatchNorm batch: data, samples and the CE batch are never concatenated (SPEC §8 pitfall 2).
Passing `chains` from an earlier call reuses its samples without sampling again (SAM's second
pass, [SADA] Algorithm 1 step 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hdgen_cli.config.schema import ObjectiveConfig
from hdgen_cli.objectives.terms import contrastive_divergence, cross_entropy, energy_l2


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: torch.Tensor | None = None
    chains: dict[str, torch.Tensor] = field(default_factory=dict)


class JEMObjective:
    def __init__(self, cfg: ObjectiveConfig, sampler=None, buffer=None):
        self.cfg, self.sampler, self.buffer = cfg, sampler, buffer

    def refine(self, model, batch: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Draw chains from the buffer, run the sampler, write them back (training only)."""
        x0, idx = self.buffer.draw(batch, y)
        x_q = self.sampler.run(model, x0, y)
        self.buffer.update(idx, x_q)
        return x_q

    def __call__(self, model, x_lab: torch.Tensor, y_lab: torch.Tensor, x_data: torch.Tensor | None,
                 chains: dict[str, torch.Tensor] | None = None) -> StepOutput:
        cfg = self.cfg
        out = StepOutput(loss=torch.zeros((), device=x_lab.device))
        if cfg.px_weight > 0:
            e_data = model.energy(x_data)
            x_q = chains["px"] if chains else self.refine(model, len(x_data))
            out.chains["px"] = x_q
            e_q = model.energy(x_q)
            out.terms["px"] = contrastive_divergence(e_data, e_q)
            out.loss = out.loss + cfg.px_weight * out.terms["px"]
            if cfg.l2_weight > 0:
                out.terms["l2"] = energy_l2(e_data, e_q)
                out.loss = out.loss + cfg.l2_weight * out.terms["l2"]
            out.stats["e_data"], out.stats["e_samples"] = e_data.detach().mean(), e_q.detach().mean()
            out.samples = x_q
        scores = model.scores(x_lab)
        if cfg.ce_weight > 0:
            out.terms["ce"] = cross_entropy(scores, y_lab)
            out.loss = out.loss + cfg.ce_weight * out.terms["ce"]
        if cfg.pxy_weight > 0:
            x_qy = chains["pxy"] if chains else self.refine(model, len(y_lab), y_lab)
            out.chains["pxy"] = x_qy
            out.terms["pxy"] = contrastive_divergence(model.energy_from_scores(scores, y_lab), model.energy(x_qy, y_lab))
            out.loss = out.loss + cfg.pxy_weight * out.terms["pxy"]
            if out.samples is None:
                out.samples = x_qy
        out.stats["acc"] = (scores.detach().argmax(1) == y_lab).float().mean()
        return out
