"""Expected calibration error and its reliability table (SPEC §3.2).

Confidence is max_y p(y|x) (GMMC's p(y|x) uses gamma-hat). M equal-width bins over [0, 1]; a
confidence c falls in bin min(floor(c * M), M - 1), so every bin is [lo, hi) except the last,
which is closed and holds c = 1. In float64:

    ECE = sum_b (n_b / N) |acc_b - conf_b|
"""

from __future__ import annotations

import torch

from hdgen_cli.data import ImageSet
from hdgen_cli.evaluation.classify import eval_scores


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


def predict(model, data: ImageSet, pixel_range: str, sigma: float = 0.0, batch_size: int = 500):
    """(p(y|x) [N, C] float64, labels [N]) on CPU, model in eval mode (see `eval_scores`)."""
    probs = eval_scores(model, data, pixel_range, sigma, batch_size).double().softmax(1).cpu()
    return probs, data.labels.cpu()


def calibration(model, data: ImageSet, pixel_range: str, bins: int = 20, sigma: float = 0.0) -> dict:
    probs, labels = predict(model, data, pixel_range, sigma)
    confidence, pred = probs.max(1)
    table = reliability_table(confidence, pred == labels, bins)
    return {"ece": expected_calibration_error(table), "accuracy": float((pred == labels).double().mean()),
            "bins": bins, "table": table, "n": len(labels)}
