"""`api.attack`: robust accuracy under PGD and C&W, and BPDA+EOT through a sampler defence."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from hdgen_cli import progress
from hdgen_cli.api.common import classifier_and_split, protocol
from hdgen_cli.distributed import map_rows
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation.attack import Classifier, carlini_wagner_l2, pgd
from hdgen_cli.evaluation.plots import robustness_curve
from hdgen_cli.files import check_writable
from hdgen_cli.loading import with_sampler
from hdgen_cli.parts import build_sampler
from hdgen_cli.records import Record


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
           data_overrides: list[str] | None = None, plot: str | Path | None = None, record: bool = True) -> dict:
    """Robust accuracy under PGD (L-inf / L2) per eps with a curve PNG, or C&W L2 success and mean
    perturbation norm, on `n` seeded test images in eval mode (docs/evaluation.md). `defense="sgld:steps=L"`
    purifies with L steps of the method's sampler, attacked with BPDA and `eot` gradient samples,
    predicted by a vote of `votes` purifications. The curve goes to `plot`, by default beside the
    run's record of this evaluation."""

    if kind not in ("pgd-linf", "pgd-l2", "cw-l2"):
        raise UsageError(f"unknown --attack '{kind}'; use pgd-linf, pgd-l2 or cw-l2")
    loaded, cfg, data = classifier_and_split(path, "test", device, data_overrides, "classifier to attack")
    model, dev = loaded.model, next(loaded.model.parameters()).device
    slot = Record(loaded.checkpoint.path.parent, "attack")
    png = Path(plot) if plot else slot.png(kind)
    if kind != "cw-l2":  # C&W reports numbers only
        check_writable(Path(plot).parent if plot else slot.folder.parent, "--out")
    purify, defense_info = None, {"defense": "none"}
    if defense and defense != "none":
        name, _, arg = defense.partition(":")
        key, _, value = arg.partition("=")
        if name != "sgld" or key != "steps" or not value.isdigit():
            raise UsageError(f"unknown --defense '{defense}'; use none or sgld:steps=L")
        sampler = build_sampler(with_sampler(cfg).sampler, loaded.info)
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

        defended = (f"BPDA+EOT through {defense} (eot {eot}, votes {votes})" if purify is not None else "no defence")
        curve_title = f"{kind}-{steps} on {len(y)} images, {defended}"

        result.update(norm=norm, steps=steps, step_size=step_size or "2.5*eps/steps", random_start=random_start,
                      results=rows_out, png=str(robustness_curve(rows_out, result["clean_accuracy"], curve_title, png)))
    result = {**result, **protocol(loaded, cfg, "test", 0.0)}
    return slot.keep(result) if record else result
