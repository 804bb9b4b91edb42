"""The divergence suite: runs on digits that diverge without the guard, trained with it on, against
reference runs that do not diverge, plus two controls (docs/stability.md).

    python benchmarks/divergence_suite.py                              # the default remedies
    python benchmarks/divergence_suite.py --remedies lower_momentum,clip_grad
    python benchmarks/divergence_suite.py --off                        # where each run diverges
    python benchmarks/divergence_suite.py --off --only jempp-m5-s1 --set optim.momentum=0   # a probe

The runs: the small-profile runs that diverged in `hdgen bench --profile small --seeds 3` (JEM++
PYLD-5-5 and PYLD-10-5 on all three seeds, SADA-JEM K=5 on seed 1) and JEM with the paper's
10 000-slot replay buffer (the quickstart, seed 2). With the guard on it
prints per run: the first divergence, the guard's early sign, recoveries, whether the run
finished its schedule, test accuracy and ECE, the reference accuracy (the configuration's
non-diverging seeds, or for JEM++, none of whose seeds finish, the same seed with
`model.norm=none`), the iterations the roll-backs re-ran and the wall time. Each control is
trained guard off and guard on and must come out bitwise equal. Runs go to --out (default a
temporary folder), one after another (the 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.config import load_config
from hdgen_cli.data import make_splits
from hdgen_cli.evaluation.calibration import calibration
from hdgen_cli.loading import load_model
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint
from hdgen_cli.runs import CONFIG, METRICS, read_metrics
from hdgen_cli.train.guard import TrainingDiverged

OFF = ["train.guard.on_divergence=stop"]


@dataclass(frozen=True)
class Case:
    name: str
    preset: str
    seed: int
    overrides: tuple[str, ...] = ()
    small: bool = True             # the small bench profile on digits, or the preset as it is
    twin: tuple[str, ...] = ()     # the reference: this seed with these overrides ...
    reference_seeds: tuple[int, ...] = ()  # ... or these seeds of the same configuration

    def config(self, extra: list[str], seed: int | None = None):
        args = [f"train.seed={seed or self.seed}", *self.overrides, *extra]
        if self.small:
            return load_profile("small").config(self.preset, ["data.name=digits", "train.log_every=5", *args])
        return load_config(self.preset, args)

    def folder(self, seed: int) -> str:
        return self.name.rsplit("-s", 1)[0] + f"-s{seed}"


def _small(preset: str, seed: int, **kw) -> Case:
    return Case(f"{preset}-s{seed}", preset, seed, **kw)


NORM_FREE = {"twin": ("model.norm=none",)}
DIVERGING = [*(_small(p, s, **NORM_FREE) for p in ("jempp-m5", "jempp-m10") for s in (1, 2, 3)),
             _small("sada-jem-k5", 1, reference_seeds=(2, 3)),
             Case("jem-buffer10k-s2", "quickstart", 2, ("sampler.buffer.size=10000",), small=False,
                  reference_seeds=(1,))]
CONTROLS = [_small("sada-jem-k5", 2), _small("sada-jem-k5", 3)]


def run_one(cfg, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)  # a run folder trained again would append to its old log
    t0, row = time.perf_counter(), {}
    try:
        result = train(cfg, out, quiet=True)
        row.update(finished=True, accuracy=result.test_accuracy, remedies=",".join(result.remedies))
        loaded = load_model(out, device="cpu")
        row["ece"] = calibration(loaded.model, make_splits(cfg.data).test, cfg.data.pixel_range)["ece"]
    except TrainingDiverged:
        row.update(finished=False, accuracy=None, ece=None)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    records = read_metrics(out)
    rolls = [r for r in records if "divergence" in r]
    gave_up = [r for r in records if r.get("gave_up")]
    row["recoveries"] = len(rolls)
    row["rerun"] = sum(r["iter"] - r["rolled_back_to"] for r in rolls)  # iterations trained twice
    firsts = [int(r["divergence"].split(":")[0].split()[1]) for r in rolls]
    if gave_up and not firsts:
        firsts = [int(gave_up[-1]["message"].split("iteration ")[1].split(":")[0])]
    row["diverged_at"] = firsts[0] if firsts else None
    row["early_sign"] = next((r["iter"] for r in records if "early_sign" in r), None)
    gaps = [r["gap"] for r in records if r.get("kind") == "train" and "gap" in r]
    row["final_gap"] = gaps[-1] if gaps else None  # a rescued run sits near the energy-L2 optimum 1 / l2_weight
    return row


def _unguarded(config: dict) -> dict:
    # A reference never diverges, and a guard that never fires leaves a run bitwise the same
    # (the controls show it), so its guard settings do not make it another reference.
    config["train"].pop("guard", None)
    return config


def reference_run(cfg, folder: Path) -> float | None:
    """A reference run's test accuracy; one already trained in `folder` with this config is read."""
    log, saved = folder / METRICS, folder / CONFIG
    if log.is_file() and saved.is_file() and _unguarded(json.loads(saved.read_text())) == \
            _unguarded(json.loads(cfg.model_dump_json())):
        done = [r for r in read_metrics(folder) if "test_accuracy" in r]
        if done:
            return done[-1]["test_accuracy"]
    row = run_one(cfg, folder)
    return row["accuracy"] if row["finished"] else None


def reference(case: Case, root: Path, refs: Path, extra: list[str]) -> tuple[float | None, str]:
    """The reference accuracy: the twin's, or the mean over the reference seeds (a control trained
    in `root` this time is read from there)."""
    if case.twin:
        return reference_run(case.config(OFF + extra + list(case.twin)), refs / f"{case.name}-twin"), \
            " ".join(case.twin) + " twin"
    accs = [reference_run(case.config(OFF + extra, seed), (root if (root / case.folder(seed)).is_dir() else refs)
                          / case.folder(seed)) for seed in case.reference_seeds]
    accs = [a for a in accs if a is not None]
    seeds = ",".join(map(str, case.reference_seeds))
    return (statistics.mean(accs) if accs else None), f"seed(s) {seeds}"


def _cell(value, fmt="{:.4f}") -> str:
    return "-" if value is None else fmt.format(value)


def bitwise_equal(a: Path, b: Path) -> bool:
    ta, tb = load_checkpoint(a).tensors, load_checkpoint(b).tensors
    keep = ("model.", "optim.", "buffer.")
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta if k.startswith(keep))


def samples_figure(panels: list[tuple[str, Path]], out: Path) -> None:
    """Side by side, each run's final sample grid (samples.png) under its name."""
    from PIL import Image, ImageDraw
    grids = [(name, Image.open(folder / "samples.png").convert("RGB")) for name, folder in panels
             if (folder / "samples.png").is_file()]
    if not grids:
        return
    w, h = grids[0][1].size
    sheet = Image.new("RGB", (len(grids) * (w + 12) - 12, h + 16), "white")
    for i, (name, grid) in enumerate(grids):
        sheet.paste(grid, (i * (w + 12), 16))
        ImageDraw.Draw(sheet).text((i * (w + 12) + 2, 2), name, fill="black")
    sheet.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--off", action="store_true", help="guard off: stop at the first divergence")
    parser.add_argument("--remedies", default=None, help="train.guard.remedies (default: the config's default)")
    parser.add_argument("--only", default="", help="comma-separated run names (as the table prints them)")
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run (probes)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--references", default=None, help="where the reference runs are (or go; default --out): "
                                                          "ones already trained there with the same config are read")
    args = parser.parse_args()
    guard = OFF if args.off else ([f"train.guard.remedies={args.remedies}"] if args.remedies else [])
    root = Path(args.out or tempfile.mkdtemp(prefix="divergence-suite-"))
    refs = Path(args.references or root)
    chosen = [c for c in DIVERGING + CONTROLS if not args.only or c.name in args.only.split(",")]
    print(f"guard {'off' if args.off else 'on: ' + (args.remedies or 'default remedies')}; overrides "
          f"{args.set or 'none'}; runs in {root}")
    t0 = time.perf_counter()
    if args.off:
        print("| run | diverged at | early sign at | finished | accuracy | ECE | seconds |\n" + "| --- " * 7 + "|")
        for case in chosen:
            row = run_one(case.config(OFF + args.set), root / case.name)
            print(f"| {case.name} | {_cell(row['diverged_at'], '{}')} | {_cell(row['early_sign'], '{}')} | "
                  f"{'yes' if row['finished'] else 'no'} | {_cell(row['accuracy'])} | {_cell(row['ece'])} | "
                  f"{row['seconds']} |", flush=True)
        print(f"total {time.perf_counter() - t0:.0f} s")
        return

    controls = {}
    for case in [c for c in chosen if c in CONTROLS]:
        on = run_one(case.config(guard + args.set), root / case.name)  # also a reference of its preset's seed 1
        run_one(case.config(OFF + args.set), root / f"{case.name}-off")
        on["bitwise"] = bitwise_equal(root / case.name, root / f"{case.name}-off")
        controls[case.name] = on
    print("| run | diverged at | early sign at | recoveries | finished | accuracy | ECE | reference accuracy | "
          "within 2 points | final E gap | iterations re-run | seconds |\n" + "| --- " * 12 + "|")
    rescued, diverging = 0, [c for c in chosen if c in DIVERGING]
    for case in diverging:
        row = run_one(case.config(guard + args.set), root / case.name)
        ref, what = reference(case, root, refs, args.set)
        close = row["finished"] and ref is not None and row["accuracy"] >= ref - 0.02
        rescued += bool(close and row["recoveries"] <= 3)
        print(f"| {case.name} | {_cell(row['diverged_at'], '{}')} | {_cell(row['early_sign'], '{}')} | "
              f"{row['recoveries']} | {'yes' if row['finished'] else 'no'} | {_cell(row['accuracy'])} | "
              f"{_cell(row['ece'])} | {_cell(ref)} ({what}) | {'yes' if close else 'no'} | "
              f"{_cell(row['final_gap'], '{:.2f}')} | {row['rerun']} | "
              f"{row['seconds']} |", flush=True)
    for name, c in controls.items():
        print(f"| {name} (control) | {_cell(c['diverged_at'], '{}')} | {_cell(c['early_sign'], '{}')} | "
              f"{c['recoveries']} | {'yes' if c['finished'] else 'no'} | {_cell(c['accuracy'])} | {_cell(c['ece'])} "
              f"| - | bitwise equal to guard off: {'yes' if c['bitwise'] else 'NO'} | {_cell(c['final_gap'], '{:.2f}')} "
              f"| {c['rerun']} | {c['seconds']} |")
    print(f"rescued within 2 points: {rescued} of {len(diverging)}; total {time.perf_counter() - t0:.0f} s")
    twinned = next((c for c in diverging if c.twin), None)
    if twinned and controls:
        name = next(iter(controls))
        samples_figure([(f"{twinned.name}, rescued", root / twinned.name),
                        (f"its {' '.join(twinned.twin)} twin", refs / f"{twinned.name}-twin"),
                        (f"{name}, never diverged", root / name)], root / "SAMPLES.png")
        print(f"samples of a rescued run, its twin and a control: {root / 'SAMPLES.png'}")


if __name__ == "__main__":
    main()
