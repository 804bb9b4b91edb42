"""CLEL: an EBM with a spherical latent variable guided by a contrastive latent encoder
([CLEL] §3, App. B). Unsupervised: labels are never read.

Per iteration, with x+ the (non-augmented, dequantised) data batch and x- the sampler's chains:

    L_EBM = mean(E(x+) - E(x-)) + alpha mean(E(x+)^2 + E(x-)^2) - beta mean cos(g(f_hat(x+)), z+)
    L_LE  = NT-Xent over two strong views of x+, with the detached projector outputs
            g(f_hat(x-)) of the chains as n extra negatives

where E = ||f||^2 / 2 and z+ = sg(h(t(x+))) / ||.||, from a third strong augmentation t of x+ in its
own no-grad encoder pass ([CLEL] Alg. 1 line 5; that pass also updates the encoder's BatchNorm
statistics, as in the official code). One backward of L_EBM + L_LE; the EBM gets gradients
only from L_EBM and the encoder h only from L_LE (both stop-gradients). The trainer's optimizer
steps the EBM; `after_step` steps the encoder's own optimizer (SGD, cosine) and the EMA copies of
both networks, which evaluation and `hdgen sample` use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.data.strong_aug import StrongAugment
from hdgen_cli.models.encoder import build_encoder
from hdgen_cli.objectives.base import Objective, StepOutput, register_objective
from hdgen_cli.optim import build_optimizer, lr_at
from hdgen_cli.optim.ema import EMA
from hdgen_cli.optim.flat import flatten_optimizer, unflatten_optimizer
from hdgen_cli.tensors import section


def nt_xent(u: torch.Tensor, extra: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """SimCLR loss for 2n unit vectors u (rows i and i + n are views of one image); `extra` [m, D] unit
    vectors are negatives for every row. Self-similarity is excluded."""
    n2 = len(u)
    keys = u if extra is None else torch.cat([u, extra])
    sim = u @ keys.T / temperature
    self_mask = torch.zeros_like(sim, dtype=torch.bool)
    self_mask[:, :n2] = torch.eye(n2, dtype=torch.bool, device=u.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    target = (torch.arange(n2, device=u.device) + n2 // 2) % n2
    return F.cross_entropy(sim, target)


@register_objective("clel")
class CLELObjective(Objective):
    def __init__(self, cfg, sampler=None, buffer=None, info=None, device="cpu"):
        super().__init__(cfg, sampler, buffer, info, device)

        c = cfg.clel
        self.encoder = build_encoder(info.channels, c.encoder_width).to(device)
        self.encoder_forward = self.encoder  # DDP over the encoder under torchrun (`replicate`)
        self.encoder_opt = build_optimizer(c.encoder_optim, self.encoder.parameters())
        self.augment = StrongAugment()
        self.ema_model: EMA | None = None
        self.ema_encoder = EMA(self.encoder, c.ebm_batch, c.ema_half_life, c.ema_copy_iters)
        self.model = None

    def bind(self, model) -> None:
        self.model = model
        self.ema_model = EMA(model, self.cfg.clel.ebm_batch, self.cfg.clel.ema_half_life, self.cfg.clel.ema_copy_iters)

    def __call__(self, model, x_lab=None, y_lab=None, x_data: torch.Tensor | None = None,
                 chains: dict[str, torch.Tensor] | None = None) -> StepOutput:
        c = self.cfg.clel
        x_pos = x_data[:c.ebm_batch]
        x_neg = chains["neg"] if chains else self.refine(model, len(x_pos))
        # --- EBM: energies, energy L2, latent term against z+ (Alg. 1 line 5: its own augmentation, no grad)
        f_pos, f_neg = model.features(x_pos), model.features(x_neg)
        e_pos, e_neg = 0.5 * f_pos.pow(2).sum(1), 0.5 * f_neg.pow(2).sum(1)
        with torch.no_grad():
            z_pos = F.normalize(self.encoder(self.augment(x_pos)), dim=1)
        views = torch.cat([self.augment(x_data), self.augment(x_data)])
        u = F.normalize(self.encoder_forward(views), dim=1)
        latent = (model.direction(f_pos) * z_pos).sum(1).mean()
        cd = e_pos.mean() - e_neg.mean()
        l2 = e_pos.pow(2).mean() + e_neg.pow(2).mean()
        loss_ebm = cd + c.alpha * l2 - model.beta * latent
        # --- encoder: NT-Xent with the chains' projector directions as extra negatives
        loss_le = nt_xent(u, model.direction(f_neg).detach(), c.temperature)
        out = StepOutput(loss=loss_ebm + loss_le, terms={"cd": cd, "l2": l2, "latent": latent, "simclr": loss_le},
                         samples=x_neg, chains={"neg": x_neg})
        out.stats["e_data"], out.stats["e_samples"] = e_pos.detach().mean(), e_neg.detach().mean()
        return out

    def replicate(self, wrap) -> None:
        self.encoder_forward = wrap(self.encoder)

    def after_step(self) -> None:
        lr = lr_at(self.cfg.clel.encoder_optim, self.iteration, int(self.epoch), self.total_iters) * self.lr_scale
        for group in self.encoder_opt.param_groups:
            group["lr"] = lr
        self.encoder_opt.step()
        self.encoder_opt.zero_grad(set_to_none=True)
        self.ema_encoder.update(self.encoder, self.iteration)
        if self.ema_model is not None:
            self.ema_model.update(self.model, self.iteration)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        state.update({f"ema_encoder.{k}": v for k, v in self.ema_encoder.model.state_dict().items()})
        if self.ema_model is not None:
            state.update({f"ema_model.{k}": v for k, v in self.ema_model.model.state_dict().items()})
        state.update(flatten_optimizer(self.encoder_opt, "encoder_optim")[0])  # Adam keeps no scalar slots
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.encoder.load_state_dict(section(state, "encoder"))
        self.ema_encoder.model.load_state_dict(section(state, "ema_encoder"))
        if self.ema_model is not None:
            self.ema_model.model.load_state_dict(section(state, "ema_model"))
        groups = {"param_groups": self.encoder_opt.state_dict()["param_groups"], "scalars": {}}
        unflatten_optimizer(self.encoder_opt, section(state, "encoder_optim"), groups, "the CLEL encoder state")
