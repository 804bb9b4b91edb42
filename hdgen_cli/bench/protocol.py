"""The one evaluation protocol `hdgen bench` applies to every run, built from the commands' own code
(`api.evaluate`, `calibrate`, `ood`, `attack`, `generation_metrics`), so a bench number is the number
the single command prints.

Every run gets, on its dataset's test split, clean inputs (sigma 0), eval mode:
- accuracy and NLL; ECE over 15 equal-width bins;
- OOD AUROC of log p(x), max p(y|x) and grad-norm against interp, uniform, constant and a second
  real dataset (digits <-> shapes offline; SVHN and CIFAR-100 for CIFAR-10);
- PGD-40 L-inf robust accuracy over an eps grid; for the EBMs also BPDA+EOT through the method's own
  sampler at one eps, with the small budget in `Protocol`;
- FID and IS of fresh samples (the method's own sampler and p0, `fid_steps` steps) and of the saved
  replay buffer, all on ONE reference network's features (the FID Inception when its weights are
  on disk, else a classifier the bench trains once per dataset), never the evaluated model's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hdgen_cli import api
from hdgen_cli.runs import LAST

OOD_SECOND = {"digits": ["shapes"], "shapes": ["digits"], "cifar10": ["svhn", "cifar100"],
              "cifar100": ["svhn", "cifar10"], "svhn": ["cifar10"],
              "fashion-mnist": ["digits", "shapes"], "mnist": ["fashion-mnist"]}


@dataclass
class Protocol:
    """The fixed evaluation settings; written into results.json and results.md."""

    ece_bins: int = 15
    ood_generated: list[str] = field(default_factory=lambda: ["interp", "uniform", "constant"])
    ood_n: int = 1000
    pgd_eps: list[int] = field(default_factory=lambda: [2, 4, 8, 16])   # in 1/255
    pgd_steps: int = 40
    attack_n: int = 500
    bpda_eps: int = 8
    bpda_n: int = 100
    bpda_steps: int = 10          # PGD steps of the BPDA+EOT attack
    bpda_purify_steps: int = 10   # sampler steps of the purification defence
    bpda_eot: int = 4
    bpda_votes: int = 8
    fid_n: int = 500
    fid_steps: int = 100
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def ood_sets(protocol: Protocol, dataset: str) -> list[str]:
    return protocol.ood_generated + OOD_SECOND.get(dataset, [])


def evaluate_run(run_dir: Path, protocol: Protocol, features: str | None, inception_weights: str | None,
                 data_overrides: list[str], device: str = "auto", checkpoint: Path | None = None,
                 out_dir: Path | None = None) -> dict:
    """Every bench metric of one finished run, as a flat {name: number} dict (see module docstring).
    Plots go to `run_dir/bench/`; `features` is the reference classifier checkpoint (None: Inception).
    `checkpoint` (default the run's last) and `out_dir` evaluate a kept checkpoint instead."""

    ckpt = checkpoint or run_dir / LAST
    out_dir = out_dir or run_dir / "bench"
    loaded = api.load_model(ckpt, device)
    cfg, classifier = loaded.config, loaded.model.has_classifier
    sampler_trained = cfg.needs_samples
    metrics: dict[str, float | None] = {}
    p = protocol
    if classifier:
        ev = api.evaluate(ckpt, device=device, sigma=0.0, data_overrides=data_overrides)
        metrics.update(accuracy=ev["accuracy"], nll=ev["nll"])
        cal = api.calibrate(ckpt, bins=p.ece_bins, sigma=0.0, device=device, data_overrides=data_overrides,
                            plot=out_dir / "calibration.png")
        metrics.update(ece=cal["ece"], ece_ts=cal["ece_temperature_scaled"], temperature=cal["temperature"],
                       confidence_gap=cal["confidence_gap"], lse=cal["mean_lse"], margin=cal["mean_top2_margin"])
    sets = ood_sets(p, cfg.data.name)
    ood = api.ood(ckpt, sets=sets, n=p.ood_n, sigma=0.0, device=device, data_overrides=data_overrides,
                  out_dir=out_dir, seed=p.seed, plots=False)  # 12 histograms a run cost more than the scores
    for row in ood["results"]:
        metrics[f"auroc.{row['score']}.{row['ood']}"] = row["auroc"]
    for score in {row["score"] for row in ood["results"]}:
        values = [row["auroc"] for row in ood["results"] if row["score"] == score]
        metrics[f"auroc.{score}.mean"] = sum(values) / len(values)
    if classifier:
        pgd = api.attack(ckpt, kind="pgd-linf", eps=[e / 255 for e in p.pgd_eps], steps=p.pgd_steps, n=p.attack_n,
                         seed=p.seed, device=device, data_overrides=data_overrides, plot=out_dir / "pgd-linf.png")
        metrics["clean_accuracy_attack_subset"] = pgd["clean_accuracy"]
        for e, row in zip(p.pgd_eps, pgd["results"]):
            metrics[f"pgd.{e}"] = row["robust_accuracy"]
        if sampler_trained:  # the EBMs defend with their own sampler: BPDA+EOT
            bpda = api.attack(ckpt, kind="pgd-linf", eps=[p.bpda_eps / 255], steps=p.bpda_steps, n=p.bpda_n,
                              defense=f"sgld:steps={p.bpda_purify_steps}", eot=p.bpda_eot, votes=p.bpda_votes,
                              seed=p.seed, device=device, data_overrides=data_overrides,
                              plot=out_dir / "bpda-eot.png")
            metrics[f"bpda.{p.bpda_eps}"] = bpda["results"][0]["robust_accuracy"]
    torch.manual_seed(p.seed)
    fresh = api.generation_metrics(ckpt, n=p.fid_n, steps=p.fid_steps, init="noise", protocol="fresh",
                                   features=features, inception_weights=inception_weights, device=device,
                                   data_overrides=data_overrides, seed=p.seed)
    metrics.update({"fid.fresh": fresh["fid"], "is.fresh": fresh["inception_score"]})
    if sampler_trained and "buffer.images" in loaded.checkpoint.tensors:
        buf = api.generation_metrics(ckpt, protocol="buffer", features=features, inception_weights=inception_weights,
                                     device=device, data_overrides=data_overrides, seed=p.seed)
        metrics.update({"fid.buffer": buf["fid"], "is.buffer": buf["inception_score"]})
    return metrics
