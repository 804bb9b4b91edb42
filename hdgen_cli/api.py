"""The Python API under the CLI: every command is one call here, importable by users.

    from hdgen_cli import api
    cfg = api.load_config("quickstart", ["train.epochs=5"])
    result = api.train(cfg, "runs/demo")
    images, labels, info = api.sample("runs/demo", n=16, steps=100)  # y=3: class 3 (info["kept"])
    print(api.evaluate("runs/demo"))
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from hdgen_cli import progress
from hdgen_cli.config import load_config, override_config  # noqa: F401 - re-exported
from hdgen_cli.config.schema import RunConfig, SamplerConfig
from hdgen_cli.data import from_model_range, make_splits, to_uint8, unit_to_model_range
from hdgen_cli.distributed import map_rows
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation import classify_metrics
from hdgen_cli.files import check_writable
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_p0, build_sampler, resolve_device
from hdgen_cli.sampling import generate, generate_class
from hdgen_cli.train import train  # noqa: F401 - re-exported
from hdgen_cli.train.checkpoint import Checkpoint, load_checkpoint, load_model_state


@dataclass
class LoadedModel:
    model: torch.nn.Module
    checkpoint: Checkpoint

    @property
    def config(self) -> RunConfig:
        return self.checkpoint.config

    @property
    def info(self) -> DataInfo:
        return self.checkpoint.info


def load_model(path: str | Path, device: str = "auto", ema: bool = True) -> LoadedModel:
    """Rebuild a model from a checkpoint alone (no preset needed), in eval mode. Runs that keep an EMA
    copy (CLEL) load its weights unless `ema=False`: evaluation and sampling use the average."""
    ckpt = load_checkpoint(path)
    model = build_model(ckpt.config, ckpt.info)
    load_model_state(model, ckpt)
    averaged = ckpt.section("objective.ema_model")
    if ema and averaged:
        model.load_state_dict(averaged)
    return LoadedModel(model.to(resolve_device(device)).eval(), ckpt)


def load_encoder(loaded: LoadedModel, device, what: str = "--like"):
    """CLEL's EMA latent encoder h from a checkpoint, in eval mode."""
    from hdgen_cli.models.encoder import build_encoder

    weights = loaded.checkpoint.section("objective.ema_encoder")
    if loaded.config.objective.name != "clel" or not weights:
        raise UsageError(f"{what} needs a CLEL checkpoint (it uses the latent encoder)")
    encoder = build_encoder(loaded.info.channels, loaded.config.objective.clel.encoder_width)
    encoder.load_state_dict(weights)
    return encoder.to(device).eval()


def latent_conditions(loaded: LoadedModel, paths: list[str], device) -> torch.Tensor:
    """One unit latent per path for CLEL's conditional sampling: z = normalised sum over the path's
    images of h(t(x)), with the EMA encoder h and one strong augmentation t per image (SPEC §2.7)."""
    from hdgen_cli.data.folder import read_images
    from hdgen_cli.data.strong_aug import StrongAugment

    info = loaded.info
    encoder = load_encoder(loaded, device)
    augment, zs = StrongAugment(), []
    with torch.no_grad():
        for path in paths:
            u = read_images(path, info.channels, info.image_size).to(device).float() / 255.0
            zs.append(F.normalize(F.normalize(encoder(augment(u)), dim=1).sum(0), dim=0))
    return torch.stack(zs)


def with_sampler(cfg: RunConfig) -> RunConfig:
    """`cfg`, or for a run trained without a sampler a copy with one: GMMC's staged sampler (gmmc-gen
    constants) for the mmc head, JEM's SGLD for logits (a classifier is an EBM too)."""
    if cfg.sampler.name != "none":
        return cfg
    if cfg.energy.name == "mmc":
        sampler = SamplerConfig(name="gmmc", steps=20, step_size=1 / 64, noise=0.0, x_clamp=True)
    else:
        sampler = SamplerConfig(name="sgld")
    return cfg.model_copy(update={"sampler": sampler})


def sample(path: str | Path | LoadedModel, n: int = 64, steps: int | None = None, y: int | None = None, init: str = "noise",
           device: str = "auto", seed: int | None = None, batch_size: int = 64, inject: bool = False,
           like: list[str] | None = None, beta_c: float | None = None, conditional: str | None = None):
    """`n` samples from a checkpoint's model with its training sampler, `steps` steps each.

    init "noise": fresh chains from the preset's p0; "buffer": chains from the saved replay buffer.
    Returns (images in [0, 1], labels or None, details dict). `path` may be an already loaded
    model. A checkpoint trained without a sampler is sampled as `with_sampler` says. `inject` switches a GMMC sampler to noise-injected
    latents ([GMMC] eq. 10). `like` (CLEL) conditions on images: one path is instance- or set-
    conditional, several compose their energies, E = ||f||^2/2 - beta_c sum_a cos(g, z_a).
    `conditional` (with `y`): "filter", JEM's protocol of keeping the unconditional chains the model
    classifies as y (the default), or "energy", chains on E(x, y) (GMMC's latent-target sampler is
    its paper's conditional sampler, so GMMC defaults to it).
    """
    loaded = path if isinstance(path, LoadedModel) else load_model(path, device)
    cfg, info = with_sampler(loaded.config), loaded.info
    if y is not None and not loaded.model.has_classifier:  # before any chain runs
        raise UsageError(f"{cfg.name} has no classes to sample; condition on images with --like")
    if y is not None and not 0 <= y < max(info.num_classes, 0):
        raise UsageError(f"--class {y} is out of range; this model has classes 0..{info.num_classes - 1}")
    if seed is None:  # drawn, then recorded, so any sample can be redrawn with --seed
        seed = secrets.randbelow(2**31)
    torch.manual_seed(seed)
    if inject:
        if cfg.sampler.name != "gmmc":
            raise UsageError(f"--gmmc-inject needs a GMMC checkpoint; this one samples with {cfg.sampler.name}")
        cfg = cfg.model_copy(update={"sampler": cfg.sampler.model_copy(update={"latent": "injected"})})
    if conditional is not None and y is None:
        raise UsageError("--conditional chooses how a class is sampled; it needs --class")
    if conditional is None:
        conditional = "energy" if cfg.sampler.name == "gmmc" else "filter"
    if conditional not in ("filter", "energy"):
        raise UsageError(f"unknown --conditional '{conditional}'; use filter or energy")
    sampler = build_sampler(cfg, info)
    steps = cfg.sampler.steps if steps is None else steps
    dev = next(loaded.model.parameters()).device
    if init not in ("noise", "buffer"):
        raise UsageError(f"unknown --init '{init}'; use noise or buffer")
    # Data-driven inits (gm) use the statistics cached in the run directory, else the training split.
    context = {"cache_dir": loaded.checkpoint.path.parent, "load_train_set": lambda: make_splits(cfg.data).train}
    buffer = None
    if init == "buffer":
        if "buffer.images" not in loaded.checkpoint.tensors:
            raise UsageError(f"{loaded.checkpoint.path} has no replay buffer; use --init noise")
        buffer = build_buffer(cfg, info, dev, **context)
        buffer.load_state_dict(loaded.checkpoint.section("buffer"))
        p0 = buffer.init
    else:
        p0 = build_p0(cfg, info, dev, **context)
    energy_fn = None
    if like:
        if y is not None:
            raise UsageError("use either --class or --like, not both")
        z = latent_conditions(loaded, like, dev)
        energy_fn = lambda inp: loaded.model.conditional_energy(inp, z, beta_c)  # noqa: E731
    kept = {}
    if y is not None and conditional == "filter":
        images, kept = generate_class(loaded.model, sampler, n, steps, p0, y, buffer=buffer, batch_size=batch_size)
        labels = torch.full((len(images),), y, dtype=torch.long)
    else:
        images, labels = generate(loaded.model, sampler, n, steps, p0, buffer=buffer, y=y, batch_size=batch_size,
                                  num_classes=info.num_classes, energy_fn=energy_fn)
    details = {"n": len(images), "steps": steps, "init": init, "class": y, "seed": seed, "sampler": cfg.sampler.name,
               **({"conditional": conditional, **kept} if y is not None else {}),
               **({"latent": cfg.sampler.latent} if cfg.sampler.name == "gmmc" else {}),
               **({"like": list(like), "beta_c": loaded.model.beta if beta_c is None else beta_c} if like else {}),
               "checkpoint": str(loaded.checkpoint.path)}
    return from_model_range(images, info.pixel_range), labels, details


def _classifier_and_split(path, split: str, device: str, data_overrides: list[str] | None, what: str):
    """(loaded model, its config with `data_overrides`, the ImageSet of `split`) for a command that
    needs p(y|x); one-line errors for an unsupervised model, an unknown split or a shape mismatch."""
    loaded = load_model(path, device)
    if not loaded.model.has_classifier:
        raise UsageError(f"{loaded.checkpoint.path} is an unsupervised model ({loaded.config.name}) with no classifier; "
                         f"there is no {what} (use hdgen sample)")
    cfg = override_config(loaded.config, data_overrides or [])
    if split not in ("test", "valid"):
        raise UsageError(f"unknown --split '{split}'; use test or valid")
    splits = make_splits(cfg.data)
    data = {"test": splits.test, "valid": splits.valid}[split]
    if data is None:
        raise UsageError("this run held out no validation split (data.n_valid=0); use --split test")
    if (data.channels, data.image_size) != (loaded.info.channels, loaded.info.image_size):
        raise UsageError(f"{cfg.data.name} images are {data.channels}x{data.image_size}x{data.image_size} but the model "
                         f"expects {loaded.info.channels}x{loaded.info.image_size}x{loaded.info.image_size}; set data.image_size")
    return loaded, cfg, data


def _protocol(loaded: LoadedModel, cfg: RunConfig, split: str, sigma: float) -> dict:
    """What every evaluation result states about where its number came from."""
    out = {"dataset": cfg.data.name, "split": split, "sigma": sigma, "protocol": "clean" if sigma == 0 else "noisy",
           "checkpoint": str(loaded.checkpoint.path), "method": cfg.name, "position": loaded.checkpoint.position}
    if hasattr(loaded.model, "gamma"):  # GMMC: the gamma-hat every probability used
        out["gamma"] = float(loaded.model.gamma)
    return out


def evaluate(path: str | Path, split: str = "test", sigma: float | None = None, device: str = "auto",
             data_overrides: list[str] | None = None) -> dict:
    """Top-1 accuracy and NLL of a checkpoint on its dataset's test (or validation) split (and
    GMMC's gamma-hat, estimated on the training split after training)."""
    loaded, cfg, data = _classifier_and_split(path, split, device, data_overrides, "accuracy to evaluate")
    sigma = cfg.data.eval_sigma if sigma is None else sigma
    metrics = classify_metrics(loaded.model, data, cfg.data.pixel_range, sigma=sigma)
    return {**metrics, **_protocol(loaded, cfg, split, sigma)}


def calibrate(path: str | Path, bins: int = 20, split: str = "test", sigma: float | None = None,
              device: str = "auto", data_overrides: list[str] | None = None, plot: str | Path | None = None) -> dict:
    """ECE with `bins` equal-width confidence bins, the bin table, and a reliability diagram PNG
    (default: calibration-<split>.png next to the checkpoint) (SPEC §3.2)."""
    from hdgen_cli.evaluation.calibration import calibration
    from hdgen_cli.evaluation.plots import reliability_diagram

    if bins < 1:
        raise UsageError(f"--bins {bins} must be at least 1")
    loaded, cfg, data = _classifier_and_split(path, split, device, data_overrides, "p(y|x) to calibrate")
    sigma = cfg.data.eval_sigma if sigma is None else sigma
    png = Path(plot) if plot else loaded.checkpoint.path.parent / f"calibration-{split}.png"
    check_writable(png.parent, "--out")
    result = calibration(loaded.model, data, cfg.data.pixel_range, bins, sigma)
    result["png"] = str(reliability_diagram(result["table"], result["ece"], png))
    return {**result, **_protocol(loaded, cfg, split, sigma)}


def ood(path: str | Path, scores: list[str] | None = None, sets: list[str] | None = None, n: int = 1000,
        sigma: float | None = None, device: str = "auto", data_overrides: list[str] | None = None,
        out_dir: str | Path | None = None, seed: int = 0, beta_ood: float = 0.1, plots: bool = True) -> dict:
    """AUROC of each score for the in-distribution test set (positive) against each OOD set, with a
    score histogram PNG per pair unless `plots` is off (SPEC §3.3). Up to `n` images per side, chosen with `seed`.
    CLEL's log p(x) score is -s(x) = -(||f||^2/2 - beta_ood cos(g(f_hat), h(x))) with its EMA networks."""
    from hdgen_cli.data import load_dataset
    from hdgen_cli.evaluation.ood import GENERATED, SCORES, auroc, generated_set, match_images, score_batches
    from hdgen_cli.evaluation.plots import score_histogram

    loaded = load_model(path, device)
    model, info = loaded.model, loaded.info
    cfg = override_config(loaded.config, data_overrides or [])
    out_dir = check_writable(Path(out_dir) if out_dir else loaded.checkpoint.path.parent, "--out-dir")
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
            from hdgen_cli.data.folder import read_images

            images = read_images(name, info.channels, info.image_size)  # converted and resized to the model's
            candidates[Path(name).name or name] = images[torch.randperm(len(images), generator=gen)[:n]]
        else:
            other = load_dataset(override_config(cfg, [f"data.name={name}", "data.image_size=none"]).data, "test")
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
                png = score_histogram({cfg.data.name: pos.tolist(), name: neg.tolist()},
                                      f"{score}: {cfg.data.name} vs {name}", out_dir / f"ood-{score}-{name}.png") if plots else None
                results.append({"score": score, "ood": name, "auroc": auroc(pos, neg), "n_in": len(pos),
                                "n_ood": len(neg), "png": str(png) if png else None})
    return {"results": results, "direction": "higher score = in-distribution; in-distribution is the positive class",
            **({"beta_ood": beta_ood} if cfg.objective.name == "clel" else {}), **_protocol(loaded, cfg, "test", sigma)}


def parse_eps(text: str) -> float:
    """'8/255', '0.5' -> float (attack budgets on the [0, 1] scale)."""
    try:
        num, _, den = text.partition("/")
        value = float(num) / (float(den) if den else 1.0)
    except ValueError:
        raise UsageError(f"--eps '{text}' is not a number or a fraction like 8/255") from None
    if not value >= 0:
        raise UsageError(f"--eps {text} must be >= 0")
    return value


def attack(path: str | Path, kind: str = "pgd-linf", eps: list[float] | None = None, steps: int | None = None,
           step_size: float | None = None, random_start: bool = True, n: int = 500, targeted: bool = False,
           defense: str | None = None, eot: int = 15, votes: int = 150, seed: int = 0, device: str = "auto",
           data_overrides: list[str] | None = None, plot: str | Path | None = None) -> dict:
    """Robust accuracy under PGD (L-inf / L2) per eps with a curve PNG, or C&W L2 success and mean
    perturbation norm, on `n` seeded test images in eval mode (SPEC §3.5). `defense="sgld:steps=L"`
    purifies with L steps of the method's sampler, attacked with BPDA and `eot` gradient samples,
    predicted by a vote of `votes` purifications."""
    from hdgen_cli.evaluation.attack import Classifier, carlini_wagner_l2, pgd

    if kind not in ("pgd-linf", "pgd-l2", "cw-l2"):
        raise UsageError(f"unknown --attack '{kind}'; use pgd-linf, pgd-l2 or cw-l2")
    loaded, cfg, data = _classifier_and_split(path, "test", device, data_overrides, "classifier to attack")
    model, dev = loaded.model, next(loaded.model.parameters()).device
    png = Path(plot) if plot else loaded.checkpoint.path.parent / f"attack-{kind}.png"
    if kind != "cw-l2":  # C&W reports numbers only
        check_writable(png.parent, "--out")
    purify, defense_info = None, {"defense": "none"}
    if defense and defense != "none":
        name, _, arg = defense.partition(":")
        key, _, value = arg.partition("=")
        if name != "sgld" or key != "steps" or not value.isdigit():
            raise UsageError(f"unknown --defense '{defense}'; use none or sgld:steps=L")
        sampler = build_sampler(with_sampler(cfg), loaded.info)
        purify = lambda x: sampler.run(model, x, steps=int(value))  # noqa: E731
        defense_info = {"defense": defense, "attack_mode": "bpda+eot", "eot": eot, "votes": votes}
    clf = Classifier(model, loaded.info.pixel_range, purify, eot, votes)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=gen)[:n]
    u, y = data.images[idx].to(dev).float() / 255.0, data.labels[idx].to(dev)
    target = y  # untargeted; a seeded other label for targeted C&W
    if kind == "cw-l2" and targeted:
        shift = torch.randint(1, loaded.info.num_classes, (len(y),), generator=gen).to(dev)
        target = (y + shift) % loaded.info.num_classes
    norm = "linf" if kind == "pgd-linf" else "l2"
    eps = eps or ([8 / 255] if norm == "linf" else [0.5])
    steps = steps or ((1000 if targeted else 100) if kind == "cw-l2" else (40 if norm == "linf" else 50))
    torch.manual_seed(seed)
    total = clf.passes(kind, len(eps), steps)
    if purify is not None and progress.shown():  # BPDA+EOT at full votes can take hours: say so before starting
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):  # timing leaves the results alone
            clf.logits(u[:64])
        pace = (time.perf_counter() - t0) * -(-len(u) // 64)
        progress.note(f"attack: {total} passes of {len(u)} images through {value} sampler steps each "
                      f"(eot {eot}, votes {votes}); about {progress.clock(total * pace)} at this pace")

    def rows(u, y, target):  # per image: clean correct, then C&W (success, L2) or PGD robust correct per eps
        cols = [clf.predict(u) == y]
        if kind == "cw-l2":
            adv, ok = carlini_wagner_l2(clf, u, y, target if targeted else None, steps=steps)
            cols += [ok, (adv - u).flatten(1).norm(dim=1)]
        else:
            cols += [clf.predict(pgd(clf, u, y, e, norm, steps, step_size, random_start)) == y for e in eps]
        return torch.stack([c.double() for c in cols], 1)

    with progress.stage("attack", total, unit="passes") as shown:
        clf.on_pass = shown.advance
        table = map_rows(rows, u, y, target)  # under torchrun each rank attacks its shard
    result = {"attack": kind, "n": len(y), "clean_accuracy": float(table[:, 0].mean()), "seed": seed, **defense_info}
    if kind == "cw-l2":
        ok, norms = table[:, 1].bool(), table[:, 2]
        result.update(targeted=targeted, steps=steps, success_rate=float(ok.double().mean()),
                      mean_l2=float(norms[ok].mean()) if ok.any() else None)
    else:
        rows_out = [{"eps": e, "robust_accuracy": float(table[:, 1 + i].mean())} for i, e in enumerate(eps)]
        from hdgen_cli.evaluation.plots import robustness_curve

        result.update(norm=norm, steps=steps, step_size=step_size or "2.5*eps/steps", random_start=random_start,
                      results=rows_out, png=str(robustness_curve(rows_out, result["clean_accuracy"], kind, png)))
    return {**result, **_protocol(loaded, cfg, "test", 0.0)}


def generation_metrics(path: str | Path, n: int = 1000, steps: int | None = None, init: str = "noise",
                       protocol: str = "fresh", features: str | Path | None = None,
                       inception_weights: str | Path | None = None, device: str = "auto",
                       data_overrides: list[str] | None = None, seed: int = 0, splits: int = 10) -> dict:
    """FID against the training split and IS of `n` fresh samples (`steps` sampler steps from `init`),
    or of the whole saved replay buffer with `protocol="buffer"` (SPEC §3.4), on the FID Inception's
    pool features or, with `features=CKPT`, on a classifier checkpoint's features and p(y|x).
    Also writes sample grids sorted by log p(x) and (for classifiers) by max p(y|x)."""
    from hdgen_cli.evaluation.generation import build_extractor, embed, frechet_distance, gaussian_stats, inception_score
    from hdgen_cli.train.outputs import write_grid

    if protocol not in ("fresh", "buffer"):
        raise UsageError(f"unknown --protocol '{protocol}'; use fresh or buffer")
    loaded = load_model(path, device)
    cfg, info, dev = override_config(loaded.config, data_overrides or []), loaded.info, next(loaded.model.parameters()).device
    # the feature network and the reference images first: a missing weights file or dataset fails before sampling
    extractor = build_extractor(features, inception_weights, info.shape, dev)
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
        png = loaded.checkpoint.path.parent / f"samples-by-{key}.png"
        grids[key] = str(write_grid(samples[:64][value.argsort(descending=True).cpu()], "unit", png))
    return {"fid": fid, "inception_score": is_mean, "inception_score_std": is_std, "splits": min(splits, len(p_gen)),
            "features": extractor.name, "reference": f"{cfg.data.name} train ({len(reference)} images)",
            "classifier": loaded.model.has_classifier, "grids": grids, **details,
            "checkpoint": str(loaded.checkpoint.path), "method": cfg.name}


def bench(spec, quiet: bool = False) -> dict:
    """Train and evaluate a grid of presets x seeds and check the papers' claims (`hdgen_cli.bench`).
    `spec` is a `hdgen_cli.bench.BenchSpec`; returns the dict written to results.json."""
    from hdgen_cli.bench import run_bench

    return run_bench(spec, quiet=quiet)
