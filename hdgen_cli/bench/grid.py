"""`hdgen bench`: train a grid of presets x seeds on one dataset and evaluate every run alike.

Each run lives in `OUT/<preset>-s<seed>/`: `train.json` once training has ended (finished or
diverged), `result.json` once it has been evaluated. A bench started again skips finished runs,
resumes a killed one from its `last.safetensors`, and refuses a folder trained with other settings.
All inputs (presets, profile, dataset, output folder, feature network) are checked before any run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from hdgen_cli.bench.budgets import budget_overrides, by_budget, claim_figures, evaluate_budgets, schedule_note
from hdgen_cli.bench.cost import interleaved_costs
from hdgen_cli.bench.memory import PeakMemory
from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.bench.progress import GridProgress
from hdgen_cli.bench.protocol import OOD_SECOND, Protocol, evaluate_run
from hdgen_cli.bench.reference import choose_features, reference_classifier
from hdgen_cli.bench.results import collect, write_results
from hdgen_cli.checkpoint import load_checkpoint
from hdgen_cli.config import override_config
from hdgen_cli.config.presets import config_differences
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import load_dataset, make_splits
from hdgen_cli.errors import UsageError
from hdgen_cli.files import check_writable, write_text_atomically
from hdgen_cli.report import write_report
from hdgen_cli.runs import CONFIG, LAST, METRICS, divergences, read_metrics
from hdgen_cli.train import TrainingDiverged, train

DEFAULT_PRESETS = ("softmax", "jem", "jempp-m5", "jempp-m10", "sada-jem-k5", "gmmc-dis", "gmmc-gen", "gmmc-joint",
                   "hdge", "hdge-jem", "clel-small")
QUICK_PRESETS = ("softmax", "jem", "jempp-m5", "hdge")
# A run folder is reused only for the same settings; where the data live and on which device do not matter.
COMPARED = tuple(f"{section}." for section in RunConfig.model_fields if section not in ("name", "description"))
IGNORED = ("data.data_dir", "data.download", "train.device")


@dataclass
class BenchSpec:
    presets: list[str] = field(default_factory=lambda: list(DEFAULT_PRESETS))
    seeds: int = 3
    profile: str = "small"
    overrides: list[str] = field(default_factory=lambda: ["data.name=digits"])
    out: Path = Path("bench")
    features: str = "auto"
    inception_weights: str | None = None
    protocol: Protocol = field(default_factory=Protocol)
    device: str = "auto"
    reference_overrides: list[str] = field(default_factory=list)  # e.g. a longer-trained reference network
    at: list[int] = field(default_factory=list)  # training budgets (iterations) to evaluate each run at


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj) -> None:
    write_text_atomically(path, json.dumps(obj, indent=2, default=str) + "\n")


def plan(spec: BenchSpec) -> list[tuple[str, int, RunConfig]]:
    """(preset, seed, config) for every run; every input is validated here, before any work."""
    if spec.seeds < 1:
        raise UsageError(f"--seeds {spec.seeds} must be at least 1")
    if not spec.presets:
        raise UsageError("--presets is empty; name at least one preset (`hdgen presets list`)")
    profile = load_profile(spec.profile)
    runs = []
    for preset in spec.presets:
        for seed in range(1, spec.seeds + 1):
            cfg = profile.config(preset, [*spec.overrides, *budget_overrides(spec.at), f"train.seed={seed}",
                                          f"train.device={spec.device}"])
            runs.append((preset, seed, cfg))
    names = {cfg.data.name for _, _, cfg in runs}
    if len(names) > 1:
        raise UsageError(f"a bench compares methods on one dataset; these presets ask for {', '.join(sorted(names))}")
    _check_data(runs[0][2], spec.protocol)  # a dataset missing offline fails here, not after an hour of training
    check_writable(spec.out, "--out")
    for preset, seed, cfg in runs:  # a folder trained with other settings is refused before anything runs
        saved = _read_json(spec.out / f"{preset}-s{seed}" / CONFIG)
        if saved is not None:
            changed = [c for c in config_differences(RunConfig.model_validate(saved), cfg, COMPARED)
                       if not c.startswith(IGNORED)]
            if changed:
                raise UsageError(f"{spec.out / f'{preset}-s{seed}'} was trained with other settings "
                                 f"({'; '.join(changed[:3])}); pass another --out or remove that folder")
    return runs


def _check_data(cfg: RunConfig, protocol: Protocol) -> None:
    """Load the bench's dataset and every real OOD set its protocol reads (one error line if absent)."""

    make_splits(cfg.data)
    for name in OOD_SECOND.get(cfg.data.name, []):
        load_dataset(override_config(cfg, [f"data.name={name}", "data.image_size=none", "data.pad_to=none"]).data, "test")


def _train(run_dir: Path, cfg: RunConfig) -> dict:
    """Train (or resume) one run; a divergence the guard could not recover is a result, not a crash."""

    last, start = run_dir / LAST, 0
    resume = None
    if last.is_file():
        resume, start = last, load_checkpoint(last).position.get("iteration", 0)
    elif run_dir.exists():  # killed before its first checkpoint: start clean
        (run_dir / METRICS).unlink(missing_ok=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    status, message, result = "finished", None, None
    with PeakMemory(cfg.train.device) as memory:
        try:
            result = train(cfg, run_dir, resume=resume, quiet=True)
        except TrainingDiverged as exc:
            status, message = "diverged", str(exc)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    events = read_metrics(run_dir)
    done = (result.iterations if result else max((e.get("iter", 0) for e in events), default=0)) - start
    evaluated = load_checkpoint(last).position.get("iteration") if last.is_file() else None
    return {"status": status, "message": message, "iterations": result.iterations if result else None,
            "checkpoint_iteration": evaluated,  # what the evaluation reads: a diverged run's last good checkpoint
            "resumed_at": start or None, "s_per_iter": seconds / max(done, 1), "cpu_s_per_iter": cpu / max(done, 1),
            "train_seconds": seconds if not start else None, "peak_memory_mb": memory.peak_mb,
            "divergences": divergences(run_dir), "recoveries": result.recoveries if result else None,
            "rescued": bool(result and result.recoveries),  # diverged, rolled back, remedied and finished
            "remedies": list(result.remedies) if result else
            next((e["applied"] for e in reversed(events) if "applied" in e), [])}


def run_bench(spec: BenchSpec, quiet: bool = False) -> dict:
    """Train and evaluate the grid, then write results.json, results.md and the claims table to
    `spec.out`; returns the results dict (see `bench.results`). `cost.json` holds the interleaved
    step timings (see `bench.cost`); it is redone when the preset list changes."""

    features_kind = choose_features(spec.features, spec.inception_weights)
    runs = plan(spec)
    data_over = [o for o in spec.overrides if o.startswith("data.")]
    progress = GridProgress([f"{p}-s{s}" for p, s, _ in runs], quiet=quiet)
    with progress:
        features = None
        if features_kind == "reference":
            progress.note("training the reference classifier for FID features (once per dataset)")
            features = str(reference_classifier(spec.out, data_over + spec.reference_overrides))
        for preset, seed, cfg in runs:
            run_dir = spec.out / f"{preset}-s{seed}"
            name = run_dir.name
            if _read_json(run_dir / "result.json") is not None:
                progress.done(name, skipped=True)
                continue
            progress.start(name)
            trained = _read_json(run_dir / "train.json")
            if trained is None:
                trained = _train(run_dir, cfg)
                _write_json(run_dir / "train.json", trained)
            metrics = {}
            if (run_dir / LAST).is_file():
                metrics = evaluate_run(run_dir, spec.protocol, features, spec.inception_weights, data_over, spec.device)
            result = {"preset": preset, "seed": seed, "train": trained, "metrics": metrics}
            if spec.at:
                result["budgets"] = evaluate_budgets(run_dir, spec.at, metrics, lambda ckpt, where: evaluate_run(
                    run_dir, spec.protocol, features, spec.inception_weights, data_over, spec.device, ckpt, where),
                    finished=trained["status"] == "finished")
            _write_json(run_dir / "result.json", result)
            progress.done(name)
        costs = _read_json(spec.out / "cost.json")
        if costs is None or set(costs) != set(spec.presets):
            progress.note("timing one training step of every method, interleaved (the cost claims read this)")
            costs = interleaved_costs({p: cfg for p, s, cfg in runs if s == 1}, spec.device)
            _write_json(spec.out / "cost.json", costs)
    results = collect(spec, runs, features_kind, features, costs)
    if spec.at:
        results.update(budgets=list(spec.at), schedule=schedule_note(spec.at),
                       by_budget=by_budget(spec.out, runs, spec.at, costs))
    write_results(spec.out, results)
    # the same page `hdgen report` writes, over the whole grid: curves overlaid, one table
    folders = [spec.out / f"{p}-s{s}" for p, s, _ in runs if (spec.out / f"{p}-s{s}" / CONFIG).is_file()]
    if folders:
        figures = claim_figures(results) if spec.at else None
        results["report"] = str(write_report(folders, spec.out / "report.html", figures=figures))
    return results
