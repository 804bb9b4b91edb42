"""Draw samples from a trained model: fresh chains from p0 or chains from its replay buffer."""

from __future__ import annotations

import torch

from hdgen_cli import progress
from hdgen_cli.sampling.buffer import ReplayBuffer
from hdgen_cli.sampling.init import InitDistribution


def generate(model, sampler, n: int, steps: int, init: InitDistribution, buffer: ReplayBuffer | None = None,
             y: int | None = None, batch_size: int = 64, num_classes: int = 0,
             energy_fn=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`n` samples after `steps` sampler steps, in batches of `batch_size` (BN-train samplers use 64).

    With `y` set, chains follow the conditional energy E(x, y). With `buffer` set, chains start
    from random buffer slots (of block y for a class-blocked draw) and the buffer is not written.
    `energy_fn` replaces the model's energy (latent-conditional sampling; SGLD samplers only).
    Returns (images in the model range, labels or None).
    """
    device = next(model.parameters()).device
    out, labels = [], []
    with progress.stage("sample", total=-(-n // batch_size) * steps, unit="steps") as shown:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            yb = torch.full((b,), y, dtype=torch.long, device=device) if y is not None else None
            if buffer is not None:
                x = buffer.images[buffer.draw_indices(b, yb if buffer.num_classes else None)].clone()
            else:
                x = init(b, yb if num_classes else None)
            extra = {"energy_fn": energy_fn} if energy_fn is not None else {}
            out.append(sampler.run(model, x.to(device), yb, steps=steps, on_step=shown.advance, **extra).cpu())
            if yb is not None:
                labels.append(yb.cpu())
    return torch.cat(out), (torch.cat(labels) if labels else None)
