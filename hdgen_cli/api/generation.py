"""`api.generation_metrics`: FID and IS of fresh samples or of the saved replay buffer."""

from __future__ import annotations

from pathlib import Path

import torch

from hdgen_cli.api.sample import sample
from hdgen_cli.config import override_config
from hdgen_cli.data import from_model_range, make_splits, to_uint8, unit_to_model_range
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation.generation import build_extractor, embed, frechet_distance, gaussian_stats, inception_score
from hdgen_cli.loading import load_feature_classifier, load_model
from hdgen_cli.records import Record
from hdgen_cli.train.outputs import write_grid


def generation_metrics(path: str | Path, n: int = 1000, steps: int | None = None, init: str = "noise",
                       protocol: str = "fresh", features: str | Path | None = None,
                       inception_weights: str | Path | None = None, device: str = "auto",
                       data_overrides: list[str] | None = None, seed: int = 0, splits: int = 10,
                       record: bool = True) -> dict:
    """FID against the training split and IS of `n` fresh samples (`steps` sampler steps from `init`),
    or of the whole saved replay buffer with `protocol="buffer"` (docs/evaluation.md), on the FID Inception's
    pool features or, with `features=CKPT`, on a classifier checkpoint's features and p(y|x).
    Also writes sample grids sorted by log p(x) and (for classifiers) by max p(y|x), beside the
    run's record of this evaluation."""

    if protocol not in ("fresh", "buffer"):
        raise UsageError(f"unknown --protocol '{protocol}'; use fresh or buffer")
    loaded = load_model(path, device)
    slot = Record(loaded.checkpoint.path.parent, "generation")
    cfg, info, dev = override_config(loaded.config, data_overrides or []), loaded.info, next(loaded.model.parameters()).device
    # the feature network and the reference images first: a missing weights file or dataset fails before sampling
    judge = load_feature_classifier(features, info.shape, dev) if features else None
    extractor = build_extractor(judge, inception_weights, dev)
    reference = make_splits(cfg.data).train
    if protocol == "buffer":
        if "buffer.images" not in loaded.checkpoint.tensors:
            raise UsageError(f"{loaded.checkpoint.path} has no replay buffer; use --protocol fresh")
        samples = from_model_range(loaded.checkpoint.tensors["buffer.images"], info.pixel_range)
        details = {"protocol": "buffer", "n": len(samples)}
    else:
        samples, _, d = sample(loaded, n=n, steps=steps, init=init, seed=seed)
        details = {"protocol": "fresh", "n": n, "steps": d["steps"], "init": init}
    samples_u8 = to_uint8(samples)
    f_ref, _ = embed(extractor, reference.images, dev)
    f_gen, p_gen = embed(extractor, samples_u8, dev)
    fid = frechet_distance(*gaussian_stats(f_gen), *gaussian_stats(f_ref))
    is_mean, is_std = inception_score(p_gen, min(splits, len(p_gen)))
    # grids: the first 64 samples ordered by the model's own log p(x) and confidence, best first
    x = unit_to_model_range(samples[:64].to(dev), info.pixel_range)
    grids = {}
    with torch.no_grad():
        orders = {"logpx": -loaded.model.energy(x)}
        if loaded.model.has_classifier:
            orders["maxprob"] = loaded.model.scores(x).softmax(1).max(1).values
    for key, value in orders.items():
        png = slot.png(f"samples-by-{key}")
        grids[key] = str(write_grid(samples[:64][value.argsort(descending=True).cpu()], "unit", png))
    result = {"fid": fid, "inception_score": is_mean, "inception_score_std": is_std, "splits": min(splits, len(p_gen)),
              "features": extractor.name, "reference": f"{cfg.data.name} train ({len(reference)} images)",
              "classifier": loaded.model.has_classifier, "grids": grids, **details,
              "checkpoint": str(loaded.checkpoint.path), "method": cfg.name}
    return slot.keep(result) if record else result
