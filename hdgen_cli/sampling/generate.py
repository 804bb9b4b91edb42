"""Draw samples from a trained model: fresh chains from p0 or chains from its replay buffer.

Two ways to draw class y:
- `generate(..., y=y)`: chains follow the conditional energy E(x, y) (for logits, -f(x)[y]);
- `generate_class`: JEM's conditional protocol. Chains follow the model's unconditional kernel,
  the model classifies where they end, and those whose argmax p(y|x) is y are kept. The logit
  models are trained only through LSE(f(x)) and p(y|x), never through a chain on -f(x)[y]; a long
  chain on -f(x)[y] climbs one logit into saturated textures, all alike. The kept chains are
  samples of p(x) restricted to the region p(y|x) calls y.
"""

from __future__ import annotations

import math

import torch

from hdgen_cli import progress
from hdgen_cli.errors import HdgenError
from hdgen_cli.sampling.buffer import ReplayBuffer
from hdgen_cli.sampling.init import InitDistribution


def _starts(b: int, init: InitDistribution, buffer: ReplayBuffer | None, yb: torch.Tensor | None,
            num_classes: int) -> torch.Tensor:
    """`b` chain starts: random buffer slots (of block y for a class-blocked draw), else p0 draws."""
    if buffer is not None:
        return buffer.images[buffer.draw_indices(b, yb if buffer.num_classes else None)].clone()
    return init(b, yb if num_classes else None)


def generate(model, sampler, n: int, steps: int, init: InitDistribution, buffer: ReplayBuffer | None = None,
             y: int | None = None, batch_size: int = 64, num_classes: int = 0,
             energy_fn=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`n` samples after `steps` sampler steps, in batches of `batch_size` (BN-train samplers use 64).

    With `y` set, chains follow the conditional energy E(x, y). With `buffer` set, chains start
    from random buffer slots and the buffer is not written. `energy_fn` replaces the model's
    energy (latent-conditional sampling; SGLD samplers only).
    Returns (images in the model range, labels or None).
    """
    device = next(model.parameters()).device
    out, labels = [], []
    with progress.stage("sample", total=-(-n // batch_size) * steps, unit="steps") as shown:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            yb = torch.full((b,), y, dtype=torch.long, device=device) if y is not None else None
            x = _starts(b, init, buffer, yb, num_classes)
            extra = {"energy_fn": energy_fn} if energy_fn is not None else {}
            out.append(sampler.run(model, x.to(device), yb, steps=steps, on_step=shown.advance, **extra).cpu())
            if yb is not None:
                labels.append(yb.cpu())
    return torch.cat(out), (torch.cat(labels) if labels else None)


@torch.no_grad()
def _predicted(model, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model.scores(x).argmax(1)
    finally:
        model.train(was_training)


def generate_class(model, sampler, n: int, steps: int, init: InitDistribution, y: int,
                   buffer: ReplayBuffer | None = None, batch_size: int = 64, max_chains: int | None = None,
                   ) -> tuple[torch.Tensor, dict]:
    """`n` samples of class `y` by JEM's conditional protocol (see the module docstring).

    Rounds of `batch_size` unconditional chains run until `n` have been kept or `max_chains`
    (default 50 n) have run. Returns (images in the model range, stats): stats give the chains run
    and the share kept. Fewer than `n` are returned when the budget runs out; none is an error.
    """
    device = next(model.parameters()).device
    max_chains = 50 * n if max_chains is None else max_chains
    order = None
    if buffer is not None:  # JEM's saved-buffer protocol: each slot starts at most one chain (a random order)
        order = torch.randperm(buffer.size)
        max_chains = min(max_chains, buffer.size)
    kept, n_kept, chains = [], 0, 0
    rounds = -(-n // batch_size)  # first guess: every chain kept; re-estimated after each round
    with progress.stage(f"sample class {y}", total=rounds * steps, unit="steps") as shown:
        while n_kept < n and chains < max_chains:
            b = min(batch_size, max_chains - chains)
            starts = (buffer.images[order[chains:chains + b].to(buffer.images.device)].clone() if order is not None
                      else init(b, None))
            x = sampler.run(model, starts.to(device), None, steps=steps, on_step=shown.advance)
            chains += b
            x = x[_predicted(model, x) == y].cpu()
            kept.append(x[: n - n_kept])
            n_kept += len(kept[-1])
            if n_kept < n:
                rate = max(n_kept, 1) / chains
                more = min(math.ceil((n - n_kept) / rate), max_chains - chains)
                shown.set_total(shown.done + -(-more // batch_size) * steps)
        shown.set_total(shown.done)  # done: the last line reads k/k
    if n_kept == 0:
        raise HdgenError(f"none of {chains} chains ended in class {y} (the model's p(x) puts little mass there); "
                         f"sample with --conditional energy, or from a longer-trained model")
    return torch.cat(kept), {"chains": chains, "kept": n_kept, "acceptance": n_kept / chains}
