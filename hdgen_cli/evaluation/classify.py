"""Top-1 accuracy and NLL of p(y|x) on a labelled set, model in eval mode (docs/evaluation.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli import progress
from hdgen_cli.data import ImageSet, to_model_range
from hdgen_cli.distributed import map_rows


@torch.no_grad()
def eval_scores(model, data: ImageSet, pixel_range: str, sigma: float = 0.0, batch_size: int = 500) -> torch.Tensor:
    """Class scores [N, C] (float32, on the model's device) of every image, model in eval mode;
    `sigma` adds the official protocols' test noise (0 = clean). Under torchrun each rank scores
    its shard of the rows and every rank gets all of them back in order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def rows(images):
        out = [torch.zeros(0, data.num_classes, device=device)]  # an empty shard keeps its width
        with progress.stage("classify", total=-(-len(images) // batch_size), unit="batches") as shown:
            for start in range(0, len(images), batch_size):
                x = to_model_range(images[start:start + batch_size].to(device), pixel_range)
                if sigma > 0:
                    x = x + sigma * torch.randn_like(x)
                out.append(model.scores(x).float())
                shown.advance()
        return torch.cat(out)

    try:
        return map_rows(rows, data.images)
    finally:
        model.train(was_training)


def classify_metrics(model, data: ImageSet, pixel_range: str, batch_size: int = 500, sigma: float = 0.0) -> dict:
    """{"accuracy", "nll", "n"} of p(y|x) = softmax(scores) over `data` (see `eval_scores`)."""
    scores = eval_scores(model, data, pixel_range, sigma, batch_size)
    y = data.labels.to(scores.device)
    n = len(data)
    correct = float((scores.argmax(1) == y).sum())
    nll = float(F.cross_entropy(scores, y, reduction="sum"))
    return {"accuracy": correct / max(n, 1), "nll": nll / max(n, 1), "n": n}
