"""Out-of-distribution detection: scores, OOD sets and AUROC (JEM's protocol, [JEM] Sec. 5.3).

Every score is oriented so that higher means in-distribution, and AUROC treats the
in-distribution test images as the positive class:

- `logpx`:    log p(x) up to a constant, -E(x) (JEM family: LSE f(x); GMMC: the class logsumexp
              with gamma-hat; CLEL: -s(x), supplied by the caller with its encoder)
- `maxprob`:  max_y p(y|x)
- `grad-norm`: the approximate mass, -|| d log p(x) / dx ||_2 per sample

Generated OOD sets: `interp` (midpoints of shuffled in-distribution test pairs), `uniform` noise
and `constant` images; any registered dataset is read from its test split and brought to the
model's channels and size.
"""

from __future__ import annotations

from typing import Callable

import torch

from hdgen_cli.data import ImageSet, resize_u8, to_model_range
from hdgen_cli.distributed import map_rows
from hdgen_cli.errors import UsageError

GENERATED = ("interp", "uniform", "constant")
SCORES = ("logpx", "maxprob", "grad-norm")
LogDensity = Callable[[torch.Tensor], torch.Tensor]


def auroc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(score_pos > score_neg) + P(tie) / 2 from average ranks (the Mann-Whitney U statistic)."""
    s = torch.cat([pos.double().flatten(), neg.double().flatten()])
    values, inverse, counts = torch.unique(s, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]  # tied values share their average 1-based rank
    n_pos, n_neg = pos.numel(), neg.numel()
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def generated_set(name: str, reference: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 OOD images shaped like `reference` [N, C, H, W]."""
    shape = (n, *reference.shape[1:])
    if name == "interp":
        i = torch.randint(0, len(reference), (n,), generator=generator)
        j = torch.randint(0, len(reference), (n,), generator=generator)
        return ((reference[i].int() + reference[j].int()) // 2).to(torch.uint8)
    if name == "uniform":
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    if name == "constant":
        colour = torch.randint(0, 256, (n, shape[1], 1, 1), generator=generator, dtype=torch.uint8)
        return colour.expand(shape).contiguous()
    raise UsageError(f"unknown generated OOD set '{name}'; use one of {', '.join(GENERATED)} or a dataset name")


def match_images(data: ImageSet, channels: int, size: int) -> torch.Tensor:
    """A dataset's uint8 images in the model's channel count (luma or replication) and size."""
    x = data.images
    if x.shape[1] != channels:
        if channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            x = x.expand(-1, channels, -1, -1).contiguous()
    return resize_u8(x, size)


def score_batches(name: str, model, log_density: LogDensity, images: torch.Tensor, pixel_range: str,
                  sigma: float = 0.0, batch_size: int = 250) -> torch.Tensor:
    """Score uint8 `images` with `name`, in batches, model in eval mode; returns a CPU float64 tensor.
    Under torchrun each rank scores its shard."""
    return map_rows(lambda rows: _score_rows(name, model, log_density, rows, pixel_range, sigma, batch_size), images)


def _score_rows(name, model, log_density, images, pixel_range, sigma, batch_size) -> torch.Tensor:
    device = next(model.parameters()).device
    out = [torch.zeros(0, dtype=torch.float64)]
    for start in range(0, len(images), batch_size):
        x = to_model_range(images[start:start + batch_size].to(device), pixel_range)
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
        if name == "grad-norm":
            with torch.enable_grad():
                x = x.requires_grad_(True)
                (g,) = torch.autograd.grad(log_density(x).sum(), x)
            out.append(-g.flatten(1).norm(dim=1).double().cpu())
            continue
        with torch.no_grad():
            s = log_density(x) if name == "logpx" else model.scores(x).double().softmax(1).max(1).values
        out.append(s.double().cpu())
    return torch.cat(out)
