"""JEM-family objective: CE + p(x) contrastive divergence (+ p(x|y)) (+ HDGE's contrastive log q(x|y))
(SPEC §2.2, §2.6; [JEM++] Alg. 2; [HDGE] eqs. 15, 17).

    L = w_ce CE(f(x_lab), y) + w_px [mean E(x_data) - mean E(x_q)] + w_pxy [mean E(x_lab, y) - mean E(x_q|y, y)]
        + w_hdge L_con(f(x_lab), y)

CE and L_con share one forward pass of the labelled batch (the official HDGE code runs two).
HDGE's queue receives that batch's logits after the optimizer step, in training mode only.

x_q are sampler outputs started from the replay buffer and written back after sampling. The
order of forward passes (data, sample, samples, CE) follows JEM++'s "alltrain1" so BatchNorm
running statistics see the same sequence as the official code (SPEC §2.3). Each pass is its own
BatchNorm batch: data, samples and the CE batch are never concatenated (SPEC §8 pitfall 2).
"""

from __future__ import annotations

import torch

from hdgen_cli.errors import CheckpointError
from hdgen_cli.objectives.base import Objective, StepOutput, section
from hdgen_cli.objectives.hdge import LogitQueue, contrastive_log_qxy
from hdgen_cli.objectives.terms import contrastive_divergence, cross_entropy, energy_l2


class JEMObjective(Objective):
    def __init__(self, cfg, sampler=None, buffer=None, info=None, device="cpu"):
        super().__init__(cfg, sampler, buffer, info, device)
        h = cfg.hdge
        self.queue = (LogitQueue(h.queue_size, info.num_classes, device)
                      if cfg.hdge_weight > 0 and h.negatives == "queue" else None)
        self.pending: torch.Tensor | None = None

    def after_step(self) -> None:
        if self.queue is not None and self.pending is not None:
            self.queue.push(self.pending)
        self.pending = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"queue.{k}": v for k, v in self.queue.state_dict().items()} if self.queue is not None else {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.queue is None:
            return
        saved = section(state, "queue")
        if set(saved) != {"logits", "ptr"} or saved["logits"].shape != self.queue.logits.shape:
            shape = tuple(saved["logits"].shape) if "logits" in saved else "none"
            raise CheckpointError(f"the checkpoint's HDGE queue ({shape}) does not match objective.hdge.queue_size="
                                  f"{self.queue.size} with {self.queue.logits.shape[1]} classes; resume with the run's own config")
        self.queue.load_state_dict(saved)

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
        if cfg.hdge_weight > 0:
            h = cfg.hdge
            queue = self.queue.logits if self.queue is not None else None
            out.terms["hdge"] = contrastive_log_qxy(scores, y_lab, queue, h.temperature, h.positive)
            out.loss = out.loss + cfg.hdge_weight * out.terms["hdge"]
            if model.training and chains is None:  # enqueued by after_step; SAM's second pass adds nothing
                self.pending = scores.detach()
        if cfg.pxy_weight > 0:
            x_qy = chains["pxy"] if chains else self.refine(model, len(y_lab), y_lab)
            out.chains["pxy"] = x_qy
            out.terms["pxy"] = contrastive_divergence(model.energy_from_scores(scores, y_lab), model.energy(x_qy, y_lab))
            out.loss = out.loss + cfg.pxy_weight * out.terms["pxy"]
            if out.samples is None:
                out.samples = x_qy
        out.stats["acc"] = (scores.detach().argmax(1) == y_lab).float().mean()
        return out
