"""`api.ood`: AUROC of the OOD scores against generated and real out-of-distribution sets."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from hdgen_cli import progress
from hdgen_cli.api.common import protocol
from hdgen_cli.config import override_config
from hdgen_cli.data import load_dataset, make_splits
from hdgen_cli.data.folder import read_images
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation.ood import GENERATED, SCORES, auroc, generated_set, match_images, score_batches
from hdgen_cli.evaluation.plots import score_histogram
from hdgen_cli.files import check_writable
from hdgen_cli.loading import load_encoder, load_model
from hdgen_cli.records import Record


def ood(path: str | Path, scores: list[str] | None = None, sets: list[str] | None = None, n: int = 1000,
        sigma: float | None = None, device: str = "auto", data_overrides: list[str] | None = None,
        out_dir: str | Path | None = None, seed: int = 0, beta_ood: float = 0.1, plots: bool = True,
        record: bool = True) -> dict:
    """AUROC of each score for the in-distribution test set (positive) against each OOD set, with a
    score histogram PNG per pair unless `plots` is off (docs/evaluation.md); the PNGs go to `out_dir`, by
    default beside the run's record of this evaluation. Up to `n` images per side, chosen with `seed`.
    CLEL's log p(x) score is -s(x) = -(||f||^2/2 - beta_ood cos(g(f_hat), h(x))) with its EMA networks."""

    loaded = load_model(path, device)
    model, info = loaded.model, loaded.info
    cfg = override_config(loaded.config, data_overrides or [])
    slot = Record(loaded.checkpoint.path.parent, "ood")
    if out_dir is not None:
        out_dir = check_writable(Path(out_dir), "--out-dir")
    else:
        check_writable(slot.folder.parent, "--out-dir")
    scores = scores or [s for s in SCORES if s != "maxprob" or model.has_classifier]
    for name in scores:
        if name not in SCORES:
            raise UsageError(f"unknown --score '{name}'; use one of {', '.join(SCORES)}")
        if name == "maxprob" and not model.has_classifier:
            raise UsageError(f"--score maxprob needs p(y|x); {cfg.name} has no classifier")
    sets = sets or list(GENERATED)
    sigma = cfg.data.eval_sigma if sigma is None else sigma
    dev = next(model.parameters()).device
    if cfg.objective.name == "clel":
        encoder = load_encoder(loaded, dev, "the CLEL OOD score")

        def log_density(x):
            f = model.features(x)
            cos = (model.direction(f) * F.normalize(encoder(x), dim=1)).sum(1)
            return -(0.5 * f.pow(2).sum(1) - beta_ood * cos)
    else:
        def log_density(x):
            return -model.energy(x)

    gen = torch.Generator().manual_seed(seed)
    test = make_splits(cfg.data).test
    if (test.channels, test.image_size) != (info.channels, info.image_size):
        raise UsageError(f"{cfg.data.name} images are not the model's {info.channels}x{info.image_size}x{info.image_size}")
    inside = test.images[torch.randperm(len(test), generator=gen)[:n]]
    candidates = {}
    for name in sets:
        if name in GENERATED:
            candidates[name] = generated_set(name, inside, len(inside), gen)
        elif "/" in name or Path(name).expanduser().exists():  # a folder (or file) of the user's images
            images = read_images(name, info.channels, info.image_size)  # converted and resized to the model's
            candidates[Path(name).name or name] = images[torch.randperm(len(images), generator=gen)[:n]]
        else:
            other = load_dataset(override_config(cfg, [f"data.name={name}", "data.image_size=none", "data.pad_to=none"]).data, "test")
            # subset first: only the n images used are converted and resized, not the whole test split
            other = other.subset(torch.randperm(len(other), generator=gen)[:n])
            candidates[name] = match_images(other, info.channels, info.image_size)
    results = []
    with progress.stage("ood", total=len(scores) * (1 + len(candidates)), unit="image sets scored") as shown:
        for score in scores:
            pos = score_batches(score, model, log_density, inside, info.pixel_range, sigma)
            shown.advance()
            for name, images in candidates.items():
                neg = score_batches(score, model, log_density, images, info.pixel_range, sigma)
                shown.advance()
                auroc_value = auroc(pos, neg)
                png = score_histogram({cfg.data.name: pos.tolist(), name: neg.tolist()},
                                      f"{score}: {cfg.data.name} vs {name}", auroc_value,
                                      out_dir / f"ood-{score}-{name}.png" if out_dir else slot.png(f"{score}-{name}")) if plots else None
                results.append({"score": score, "ood": name, "auroc": auroc_value, "n_in": len(pos),
                                "n_ood": len(neg), "png": str(png) if png else None})
    result = {"results": results, "direction": "higher score = in-distribution; in-distribution is the positive class",
              **({"beta_ood": beta_ood} if cfg.objective.name == "clel" else {}), **protocol(loaded, cfg, "test", sigma)}
    return slot.keep(result) if record else result
