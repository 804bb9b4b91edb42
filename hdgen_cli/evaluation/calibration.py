"""Expected calibration error, its reliability table and ECE after temperature scaling (Guo et al. 2017).

Confidence is max_y p(y|x) (GMMC's p(y|x) uses gamma-hat). M equal-width bins over [0, 1]; a
confidence c falls in bin min(floor(c * M), M - 1), so every bin is [lo, hi) except the last,
which is closed and holds c = 1. In float64:

    ECE = sum_b (n_b / N) |acc_b - conf_b|
"""

from __future__ import annotations

import torch

from hdgen_cli.data import ImageSet
from hdgen_cli.evaluation.classify import eval_scores
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation.temperature import at_bound, confidence_summary, fit_temperature, nll


def reliability_table(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 20) -> list[dict]:
    """Per bin: edges, count, mean accuracy and mean confidence (None for an empty bin)."""
    conf, hit = confidence.double().flatten(), correct.double().flatten()
    idx = (conf * bins).floor().long().clamp(0, bins - 1)
    count = torch.bincount(idx, minlength=bins).double()
    acc = torch.bincount(idx, weights=hit, minlength=bins) / count.clamp(min=1)
    mean_conf = torch.bincount(idx, weights=conf, minlength=bins) / count.clamp(min=1)
    return [{"lo": b / bins, "hi": (b + 1) / bins, "count": int(count[b]),
             "accuracy": float(acc[b]) if count[b] else None, "confidence": float(mean_conf[b]) if count[b] else None}
            for b in range(bins)]


def expected_calibration_error(table: list[dict]) -> float:
    n = sum(row["count"] for row in table)
    return sum(row["count"] / n * abs(row["accuracy"] - row["confidence"]) for row in table if row["count"])


def predict_logits(model, data: ImageSet, pixel_range: str, sigma: float = 0.0, batch_size: int = 500):
    """(the scores whose softmax is p(y|x) [N, C] float64, labels [N]) on CPU."""
    return eval_scores(model, data, pixel_range, sigma, batch_size).double().cpu(), data.labels.cpu()


def ece_of(logits: torch.Tensor, labels: torch.Tensor, bins: int) -> float:
    confidence, pred = logits.softmax(1).max(1)
    return expected_calibration_error(reliability_table(confidence, pred == labels, bins))


def calibration(model, data: ImageSet, pixel_range: str, bins: int = 20, sigma: float = 0.0,
                fit_on: ImageSet | None = None, seed: int = 0) -> dict:
    """ECE and its table on `data`, the confidence summary, and ECE after temperature scaling.

    T is fitted by NLL on `fit_on` (a validation split) and applied to all of `data`; without
    one, a seeded half of `data` fits T and the other half measures the scaled ECE, so T never
    sees the images it is judged on; `ece_unscaled_same_images` is the raw ECE on those same
    images (fewer images bias an ECE upward, so compare the scaled ECE with it).
    """
    logits, labels = predict_logits(model, data, pixel_range, sigma)
    confidence, pred = logits.softmax(1).max(1)
    table = reliability_table(confidence, pred == labels, bins)
    if fit_on is not None:
        fit_logits, fit_labels = predict_logits(model, fit_on, pixel_range, sigma)
        eval_logits, eval_labels, where = logits, labels, "valid"
    else:
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        half = len(labels) // 2
        fit_logits, fit_labels = logits[perm[:half]], labels[perm[:half]]
        eval_logits, eval_labels, where = logits[perm[half:]], labels[perm[half:]], "half"
    if len(fit_labels) < 1 or len(eval_labels) < 1:
        raise UsageError(f"{len(labels)} image(s) are too few to fit a temperature on one half and score the other")
    temperature = fit_temperature(fit_logits, fit_labels)
    return {"ece": expected_calibration_error(table), "accuracy": float((pred == labels).double().mean()),
            "bins": bins, "table": table, "n": len(labels),
            "ece_temperature_scaled": ece_of(eval_logits / temperature, eval_labels, bins),
            "ece_unscaled_same_images": ece_of(eval_logits, eval_labels, bins),  # the like-for-like before
            "temperature": temperature, "temperature_at_bound": at_bound(temperature), "temperature_fit_on": where, "temperature_fit_n": len(fit_labels),
            "temperature_eval_n": len(eval_labels), "nll": nll(logits, labels),
            "nll_temperature_scaled": nll(eval_logits, eval_labels, temperature),
            **confidence_summary(logits, labels)}
