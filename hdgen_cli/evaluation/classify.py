"""Top-1 accuracy and NLL of p(y|x) on a labelled set, model in eval mode (SPEC §3.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.data import ImageSet, to_model_range
from hdgen_cli.distributed import map_rows


@torch.no_grad()
def classify_metrics(model, data: ImageSet, pixel_range: str, batch_size: int = 500, sigma: float = 0.0) -> dict:
    """{"accuracy", "nll", "n"}; `sigma` adds the official protocols' test noise (0 = clean). Under
    torchrun each rank scores its shard of the rows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def rows(images, labels):  # [n, 2]: correct, -log p(y|x)
        out = [torch.zeros(0, 2, dtype=torch.float64, device=device)]
        for start in range(0, len(images), batch_size):
            x = to_model_range(images[start:start + batch_size].to(device), pixel_range)
            y = labels[start:start + batch_size].to(device)
            if sigma > 0:
                x = x + sigma * torch.randn_like(x)
            scores = model.scores(x).float()
            out.append(torch.stack([(scores.argmax(1) == y).double(),
                                    F.cross_entropy(scores, y, reduction="none").double()], 1))
        return torch.cat(out)

    try:
        table = map_rows(rows, data.images, data.labels)
    finally:
        model.train(was_training)
    n = len(data)
    correct, nll = table.sum(0).tolist() if n else (0.0, 0.0)
    return {"accuracy": correct / max(n, 1), "nll": nll / max(n, 1), "n": n}
