"""JEM-family objective: CE + p(x) contrastive divergence (+ p(x|y)) (+ HDGE's contrastive log q(x|y))
(docs/methods/jem.md, hdge.md; [JEM++] Alg. 2; [HDGE] eqs. 15, 17).

    L = w_ce CE(f(x_lab), y) + w_px [mean E(x_data) - mean E(x_q)] + w_pxy [mean E(x_lab, y) - mean E(x_q|y, y)]
        + w_hdge L_con(f(x_lab), y)

No forward pass is wasted: CE, L_con and p(x|y)'s data energy share one forward pass of
the labelled batch (the official HDGE code runs two), and with data.shared_batch E(x) comes from
it too. HDGE's queue receives that batch's logits after the optimizer step, in training mode only.

x_q are sampler outputs started from the replay buffer and written back after sampling. With
BatchNorm each pass is its own batch, in JEM++'s "alltrain1" order (data, sample, samples, CE) so
running statistics see the official sequence (docs/methods/jempp.md). A model
without batch coupling (no BatchNorm, no spectral norm, as the JEM and HDGE presets) forwards
data, samples and the CE batch as one concatenated batch on a GPU instead: the same numbers, one
larger kernel per layer. On a CPU three passes of 64 beat one of 192 (0.76 s against 0.88 s for
forward and backward on WRN-10-2, 2 cores: the larger activations fall out of cache), so there
each batch keeps its own pass.
"""

from __future__ import annotations

import torch

from hdgen_cli.errors import CheckpointError
from hdgen_cli.models.norm import independent_passes
from hdgen_cli.objectives.base import Objective, StepOutput, register_objective
from hdgen_cli.tensors import section
from hdgen_cli.objectives.hdge import LogitQueue, contrastive_log_qxy
from hdgen_cli.objectives.terms import contrastive_divergence, cross_entropy, energy_l2


def fuse_batches(x: torch.Tensor) -> bool:
    """Forward independent batches as one concatenated batch: on a GPU (one larger kernel per
    layer), not on a CPU (where the larger activations fall out of cache; see the module docstring)."""
    return x.is_cuda


@register_objective("jem")
class JEMObjective(Objective):
    def __init__(self, cfg, sampler=None, buffer=None, info=None, device="cpu"):
        super().__init__(cfg, sampler, buffer, info, device)
        self.energy_penalty = cfg.px_weight > 0  # the energy_l2 remedy weights the p(x) term's energies
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

    def _chains(self, model, name: str, n: int, y, chains) -> torch.Tensor:
        """Reuse the chains SAM's first pass drew, or refine n chains from the buffer."""
        return chains[name] if chains else self.refine(model, n, y)

    def __call__(self, model, x_lab: torch.Tensor, y_lab: torch.Tensor, x_data: torch.Tensor | None,
                 chains: dict[str, torch.Tensor] | None = None) -> StepOutput:
        """`x_data` None means the p(x) term reads the labelled batch (data.shared_batch)."""
        cfg = self.cfg
        px, pxy = cfg.px_weight > 0, cfg.pxy_weight > 0
        own_data = px and x_data is not None
        data = x_data if own_data else x_lab  # the p(x) data batch: its own, or the CE batch (shared)
        x_q = x_qy = s_data = s_q = s_qy = None
        if independent_passes(model):
            # No batch coupling: draw every chain first, then one forward pass over all batches.
            x_q = self._chains(model, "px", len(data), None, chains) if px else None
            x_qy = self._chains(model, "pxy", len(y_lab), y_lab, chains) if pxy else None
            batches = [x_lab] + [b for b in (x_data if own_data else None, x_q, x_qy) if b is not None]
            if fuse_batches(x_lab):
                split = iter(model.scores(torch.cat(batches)).split([len(b) for b in batches]))
            else:
                split = iter([model.scores(b) for b in batches])
            s_lab = next(split)
            s_data = next(split) if own_data else s_lab
            s_q, s_qy = (next(split) if px else None), (next(split) if pxy else None)
        else:
            # One BatchNorm batch per pass, in the official "alltrain1" order: data, sample, samples, CE.
            if px:
                s_data = model.scores(data)
                x_q = self._chains(model, "px", len(data), None, chains)
                s_q = model.scores(x_q)
            s_lab = s_data if px and not own_data else model.scores(x_lab)
            if pxy:
                x_qy = self._chains(model, "pxy", len(y_lab), y_lab, chains)
                s_qy = model.scores(x_qy)

        out = StepOutput(loss=torch.zeros((), device=x_lab.device))
        if px:
            e_data = model.energy_from_scores(s_data)
            e_q = model.energy_from_scores(s_q)
            out.chains["px"], out.samples = x_q, x_q
            out.terms["px"] = contrastive_divergence(e_data, e_q)
            out.loss = out.loss + cfg.px_weight * out.terms["px"]
            l2_weight = cfg.l2_weight + self.guard_l2  # the preset's own, plus the guard's energy_l2 remedy
            if l2_weight > 0:
                out.terms["l2"] = energy_l2(e_data, e_q, cfg.l2_form)
                out.loss = out.loss + l2_weight * out.terms["l2"]
            out.stats["e_data"], out.stats["e_samples"] = e_data.detach().mean(), e_q.detach().mean()
        if cfg.ce_weight > 0:
            out.terms["ce"] = cross_entropy(s_lab, y_lab)
            out.loss = out.loss + cfg.ce_weight * out.terms["ce"]
        if cfg.hdge_weight > 0:
            h = cfg.hdge
            queue = self.queue.unit_rows() if self.queue is not None else None
            out.terms["hdge"] = contrastive_log_qxy(s_lab, y_lab, queue, h.temperature, h.positive, unit_queue=True)
            out.loss = out.loss + cfg.hdge_weight * out.terms["hdge"]
            if model.training and chains is None:  # enqueued by after_step; SAM's second pass adds nothing
                self.pending = s_lab.detach()
        if pxy:
            out.chains["pxy"] = x_qy
            out.terms["pxy"] = contrastive_divergence(model.energy_from_scores(s_lab, y_lab),
                                                      model.energy_from_scores(s_qy, y_lab))
            out.loss = out.loss + cfg.pxy_weight * out.terms["pxy"]
            if out.samples is None:
                out.samples = x_qy
        out.stats["acc"] = (s_lab.detach().argmax(1) == y_lab).float().mean()
        return out
