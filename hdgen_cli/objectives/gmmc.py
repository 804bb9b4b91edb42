"""GMMC objectives ([GMMC] §3.2 Approaches 1-3, eq. 7), all at gamma = 1.

    L = mean_i ||phi(x_i) - mu_{y_i}||^2 / 2  -  beta(epoch) * mean_j ||phi(x'_j) - mu_{y'_j}||^2 / 2

beta = 0 is the discriminative centre-regression loss (not softmax CE). beta > 0 is generative
training: x'_j are chains of uniformly drawn classes y'_j refined by the sampler toward a latent
z near mu_{y'_j}, but the sample term measures the distance to the class mean, not to z. Joint
training is discriminative before `start_epoch` and generative from it on, either switching at
once or with beta ramped up linearly over `ramp_epochs`; the replay buffer is untouched until
then, so the generative phase starts from a fresh U[-1, 1] buffer (App. E).
"""

from __future__ import annotations

import torch

from hdgen_cli.objectives.base import Objective, StepOutput, register_objective
from hdgen_cli.objectives.terms import center_regression


@register_objective("gmmc")
class GMMCObjective(Objective):
    def beta_at(self, epoch: float) -> float:
        g = self.cfg.gmmc
        if g.beta == 0 or epoch < g.start_epoch:
            return 0.0
        if g.ramp_epochs == 0:
            return g.beta
        return g.beta * min(1.0, (epoch - g.start_epoch) / g.ramp_epochs)

    def __call__(self, model, x_lab: torch.Tensor, y_lab: torch.Tensor, x_data: torch.Tensor | None = None,
                 chains: dict[str, torch.Tensor] | None = None) -> StepOutput:
        half_d2 = model.half_sq_distances(x_lab)
        data_term = center_regression(half_d2, y_lab)
        out = StepOutput(loss=data_term, terms={"mmc": data_term})
        beta = self.beta_at(self.epoch)
        if beta > 0 and self.sampler is not None:
            if chains:
                x_q, y_q = chains["gen"], chains["gen_y"]
            else:
                y_q = torch.randint(0, model.means.shape[0], (len(x_lab),), device=x_lab.device)
                x_q = self.refine(model, len(x_lab), y_q)
            out.chains.update(gen=x_q, gen_y=y_q)
            e_q = model.latent_energy(x_q, model.means[y_q])
            out.terms["gen"] = e_q.mean()
            out.loss = data_term - beta * out.terms["gen"]
            out.stats["e_data"], out.stats["e_samples"] = data_term.detach(), e_q.detach().mean()
            out.samples = x_q
        out.stats["beta"] = torch.tensor(beta)
        out.stats["acc"] = (half_d2.detach().argmin(1) == y_lab).float().mean()
        return out
