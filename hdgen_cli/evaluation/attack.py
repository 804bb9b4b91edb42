"""White-box attacks on [0, 1] images: PGD (L-inf, L2; Madry et al. 2018), Carlini-Wagner L2 (Carlini & Wagner
2017), and BPDA + EOT (Athalye et al. 2018) through a purifying SGLD defence.

A `Classifier` maps [0, 1] images to logits: it owns the move to the model's range (and an
optional purification); attacks never see the model range. Budgets are on the [0, 1] scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.data import unit_to_model_range


class Classifier:
    """logits(u) for u in [0, 1]. GMMC's logits are -||phi - mu_y||^2 / 2 ([GMMC] eq. 4, gamma = 1); others use scores.

    With `purify` (a map on model-range images, e.g. L SGLD steps), `logits` classifies the purified
    input and its backward pass treats purification as the identity (BPDA); `eot` replicates average
    the gradient over that many purifications, and `votes` purifications vote on the prediction.
    """

    def __init__(self, model, pixel_range: str, purify=None, eot: int = 1, votes: int = 1, on_pass=None):
        self.model, self.pixel_range, self.purify, self.eot, self.votes = model, pixel_range, purify, eot, votes
        self.on_pass = on_pass  # called after every pass through the (purified) model: progress

    def passes(self, kind: str, n_eps: int, steps: int, search_steps: int = 9) -> int:
        """How many `logits` calls an attack makes: the unit of its progress and time estimate."""
        eot, votes = (self.eot, self.votes) if self.purify is not None else (1, 1)
        if kind == "cw-l2":
            return votes + search_steps * steps
        return votes + n_eps * (steps * (eot + votes) + votes)

    def _logits(self, x):
        if hasattr(self.model, "half_sq_distances"):
            return -self.model.half_sq_distances(x)
        return self.model.scores(x)

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        x = unit_to_model_range(u, self.pixel_range)
        if self.purify is not None:
            # BPDA: forward through the purified image, backward as if purification were the identity.
            x = x + (self.purify(x.detach()) - x).detach()
        logits = self._logits(x)
        if self.on_pass is not None:
            self.on_pass()
        return logits

    def loss_grad(self, u: torch.Tensor, y: torch.Tensor, loss_fn) -> torch.Tensor:
        """d loss / d u, averaged over `eot` purifications (EOT) when defended."""
        grad = torch.zeros_like(u)
        for _ in range(self.eot if self.purify is not None else 1):
            v = u.detach().requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(loss_fn(self.logits(v), y), v)
            grad += g
        return grad

    @torch.no_grad()
    def predict(self, u: torch.Tensor) -> torch.Tensor:
        if self.purify is None:
            return self.logits(u).argmax(1)
        votes = sum(F.one_hot(self.logits(u).argmax(1), self._classes(u)) for _ in range(self.votes))
        return votes.argmax(1)

    def _classes(self, u):
        return self._logits(unit_to_model_range(u[:1], self.pixel_range)).shape[1]


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = delta.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, *[1] * (delta.dim() - 1))
    return delta * (eps / n).clamp(max=1.0)


def pgd(clf: Classifier, u: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf", steps: int = 40,
        step_size: float | None = None, random_start: bool = True) -> torch.Tensor:
    """Untargeted PGD maximising CE; returns the best iterate per sample: the first that is misclassified,
    else the last. The result stays inside the eps ball around u and inside [0, 1]."""
    if eps == 0:
        return u.clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    delta = torch.zeros_like(u)
    if random_start:
        delta = (torch.rand_like(u) * 2 - 1) * eps if norm == "linf" else _project(torch.randn_like(u), eps, "l2") * torch.rand(
            len(u), *[1] * (u.dim() - 1), device=u.device)
    x = (u + delta).clamp(0, 1)
    best, fooled = x.clone(), torch.zeros(len(u), dtype=torch.bool, device=u.device)
    for _ in range(steps):
        g = clf.loss_grad(x, y, F.cross_entropy)
        if norm == "linf":
            step = step_size * g.sign()
        else:
            step = step_size * g / g.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, *[1] * (u.dim() - 1))
        x = (u + _project(x + step - u, eps, norm)).clamp(0, 1)
        now = clf.predict(x) != y
        new = now & ~fooled
        best[new], fooled = x[new], fooled | now
        best[~fooled] = x[~fooled]
    return best


def carlini_wagner_l2(clf: Classifier, u: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
                      steps: int = 100, lr: float = 0.01, kappa: float = 0.0, search_steps: int = 9,
                      c0: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """C&W L2 in tanh space with a binary search on c per sample. [GMMC] Table 7 publishes no constants, so
    lr, kappa and the search defaults are hdgen's choice.
    Returns (adversarial images, success mask); unsuccessful samples keep the clean image."""
    w0 = torch.atanh((u * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
    lo, hi = torch.zeros(len(u), device=u.device), torch.full((len(u),), float("inf"), device=u.device)
    c = torch.full((len(u),), c0, device=u.device)
    best, best_norm = u.clone(), torch.full((len(u),), float("inf"), device=u.device)
    for _ in range(search_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        found = torch.zeros(len(u), dtype=torch.bool, device=u.device)
        for _ in range(steps):
            with torch.enable_grad():
                x = (torch.tanh(w) + 1) / 2
                z = clf.logits(x)
                cls = y if target is None else target
                own = z.gather(1, cls.view(-1, 1)).squeeze(1)
                other = z.masked_fill(F.one_hot(cls, z.shape[1]).bool(), float("-inf")).max(1).values
                margin = (own - other) if target is None else (other - own)
                dist = (x - u).flatten(1).pow(2).sum(1)
                loss = (dist + c * margin.clamp(min=-kappa)).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                pred = z.argmax(1)
                ok = (pred != y) if target is None else (pred == target)
                better = ok & (dist.sqrt() < best_norm)
                best[better], best_norm[better] = x.detach()[better], dist.sqrt()[better]
                found |= ok
        hi = torch.where(found, torch.minimum(hi, c), hi)
        lo = torch.where(found, lo, torch.maximum(lo, c))
        c = torch.where(torch.isinf(hi), c * 10, (lo + hi) / 2)
    return best, torch.isfinite(best_norm)
