"""Top-1 accuracy and NLL of p(y|x) on a labelled set, model in eval mode (SPEC §3.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.data import ImageSet, to_model_range


@torch.no_grad()
def classify_metrics(model, data: ImageSet, pixel_range: str, batch_size: int = 500, sigma: float = 0.0) -> dict:
    """{"accuracy", "nll", "n"}; `sigma` adds the official protocols' test noise (0 = clean)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct, nll, n = 0, 0.0, len(data)
    try:
        for start in range(0, n, batch_size):
            x = to_model_range(data.images[start:start + batch_size].to(device), pixel_range)
            y = data.labels[start:start + batch_size].to(device)
            if sigma > 0:
                x = x + sigma * torch.randn_like(x)
            scores = model.scores(x).float()
            correct += int((scores.argmax(1) == y).sum())
            nll += float(F.cross_entropy(scores, y, reduction="sum"))
    finally:
        model.train(was_training)
    return {"accuracy": correct / max(n, 1), "nll": nll / max(n, 1), "n": n}
