"""Temperature scaling (Guo et al. 2017, Sec. 4.2) and the numbers that say whether a classifier's
miscalibration is a scale or a shape problem.

One scalar T > 0 divides every logit; T is the minimiser of the negative log-likelihood on
held-out data. NLL(z / T) is convex in 1/T (a one-parameter logistic regression), so it is
unimodal in log T and a golden-section search on log T finds the optimum to any tolerance.
T > 1 means the model was overconfident (its logits are too large), T < 1 underconfident.
"""

from __future__ import annotations

import math

import torch

GOLDEN = (math.sqrt(5) - 1) / 2
LOG_T_RANGE = (math.log(1e-3), math.log(1e3))


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean -log softmax(logits / T)[label], in float64."""
    z = logits.double() / temperature
    return float((torch.logsumexp(z, 1) - z.gather(1, labels.long().view(-1, 1)).squeeze(1)).mean())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, tol: float = 1e-10) -> float:
    """argmin_T NLL(logits / T) by golden-section search on log T over [1e-3, 1e3].

    When every image's largest logit is its label's, the NLL falls monotonically as T -> 0 (each
    term's derivative in 1/T is E_p[z] - z_y < 0) and has no minimum: the lower bound is returned
    (`at_bound` says so)."""
    lo, hi = LOG_T_RANGE
    if len(labels) and bool((logits.argmax(1) == labels).all()):
        return math.exp(lo)
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    while hi - lo > tol:
        if fa < fb:  # the minimum is in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:        # the minimum is in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def at_bound(temperature: float) -> bool:
    """Whether the fit stopped at an end of its range (e.g. a perfectly separated fitting set,
    whose NLL falls without limit as T -> 0): T is then a bound, not an optimum."""
    lo, hi = (math.exp(v) for v in LOG_T_RANGE)
    return temperature <= lo * 1.001 or temperature >= hi / 1.001


def confidence_summary(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean confidence against accuracy, and the logit scale behind it.

    confidence_gap = mean max p(y|x) - accuracy (> 0 overconfident, < 0 underconfident);
    mean_lse = mean logsumexp_y f(x)[y] (for the JEM family -E(x)); mean_top2_margin = mean gap
    between the largest and second-largest logit.
    """
    z = logits.double()
    probs = z.softmax(1)
    confidence, pred = probs.max(1)
    accuracy = float((pred == labels).double().mean())
    gap = float(confidence.mean()) - accuracy
    top = z.topk(min(2, z.shape[1]), dim=1).values
    margin = float((top[:, 0] - top[:, 1]).mean()) if z.shape[1] > 1 else None
    return {"mean_confidence": float(confidence.mean()), "confidence_gap": gap,
            "confidence_direction": "overconfident" if gap > 0 else "underconfident" if gap < 0 else "calibrated",
            "mean_lse": float(torch.logsumexp(z, 1).mean()), "mean_top2_margin": margin}
