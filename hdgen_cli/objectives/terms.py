"""Loss terms shared by the objectives. Each returns a scalar tensor."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log p(y|x) with p(y|x) = softmax(scores) (JEM eq. for the discriminative term)."""
    return F.cross_entropy(scores, y)


def contrastive_divergence(e_data: torch.Tensor, e_samples: torch.Tensor) -> torch.Tensor:
    """Maximum-likelihood gradient estimator of -log p(x): mean E(data) - mean E(samples) (JEM; docs/methods/jem.md)."""
    return e_data.mean() - e_samples.mean()


def energy_l2(e_data: torch.Tensor, e_samples: torch.Tensor, form: str = "mean_of_squares") -> torch.Tensor:
    """Energy-magnitude regulariser. "mean_of_squares" (IGEBM, CLEL Alg. 1 line 8):
    mean E(data)^2 + mean E(samples)^2. "square_of_mean" (the JEM++ and SADA-JEM codes' `l2_coeff`):
    (mean E(data))^2 + (mean E(samples))^2, which only holds the batch means near zero."""
    if form == "square_of_mean":
        return e_data.mean() ** 2 + e_samples.mean() ** 2
    if form != "mean_of_squares":
        raise ValueError(f"unknown energy L2 form {form!r}")
    return (e_data**2).mean() + (e_samples**2).mean()


def center_regression(half_sq_dist: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_i ||phi(x_i) - mu_{y_i}||^2 / 2 from the [B, C] half squared distances ([GMMC] Approach 1)."""
    return half_sq_dist.gather(1, y.view(-1, 1)).mean()
