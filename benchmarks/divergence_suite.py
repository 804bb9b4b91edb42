"""The divergence suite: the small-profile runs on digits that diverge today, and controls that
do not, each trained with the guard off (stop at the first divergence) or on (a remedy list).

    python benchmarks/divergence_suite.py --off                       # where and when each run diverges
    python benchmarks/divergence_suite.py --remedies lower_momentum,roll_back_further
    python benchmarks/divergence_suite.py --off --only jempp-m5-s1 --set optim.momentum=0   # a probe

Per run it prints: the first divergence (iteration), the first logged iteration whose E gap
(E(samples) - E(data)) is above 1 (the early sign: healthy runs stay near -0.3), the guard's
recoveries, whether the run finished its schedule, test accuracy and the wall time. Runs go to
--out (default a temporary folder) and are trained one after another (the 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.train import train
from hdgen_cli.train.guard import TrainingDiverged

# (preset, seed): the runs that diverged in `hdgen bench --profile small --seeds 3`, then the controls.
DIVERGING = [("jempp-m5", 1), ("jempp-m5", 2), ("jempp-m5", 3), ("jempp-m10", 1), ("jempp-m10", 2),
             ("jempp-m10", 3), ("sada-jem-k5", 1)]
CONTROLS = [("sada-jem-k5", 2), ("sada-jem-k5", 3)]


def run_one(preset: str, seed: int, out: Path, guard: list[str], extra: list[str]) -> dict:
    cfg = load_profile("small").config(preset, ["data.name=digits", f"train.seed={seed}", "train.log_every=5",
                                                *guard, *extra])
    t0, row = time.perf_counter(), {"run": f"{preset}-s{seed}"}
    try:
        result = train(cfg, out, quiet=True)
        row.update(finished=True, accuracy=result.test_accuracy, recoveries=result.recoveries,
                   remedies=",".join(result.remedies))
    except TrainingDiverged:
        row.update(finished=False, accuracy=None)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    events = [r for r in records if "divergence" in r or r.get("gave_up")]
    row["diverged_at"] = ([int(r["divergence"].split(":")[0].split()[1]) for r in events if "divergence" in r]
                          or [None])[0]
    if not row["finished"]:
        row["recoveries"] = sum(1 for r in events if "divergence" in r)
        row["diverged_at"] = row["diverged_at"] or int(events[-1]["message"].split("iteration ")[1].split(":")[0])
    gaps = [r["iter"] for r in records if r.get("kind") == "train" and r.get("gap", 0) > 1]
    row["gap_over_1"] = gaps[0] if gaps else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--off", action="store_true", help="guard off: stop at the first divergence")
    parser.add_argument("--remedies", default="more_steps,lower_lr", help="train.guard.remedies when the guard is on")
    parser.add_argument("--only", default="", help="comma-separated run names (preset-sSEED)")
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides for every run (probes)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    guard = ["train.guard.on_divergence=stop"] if args.off else [f"train.guard.remedies={args.remedies}"]
    root = Path(args.out or tempfile.mkdtemp(prefix="divergence-suite-"))
    runs = [(p, s) for p, s in DIVERGING + CONTROLS if not args.only or f"{p}-s{s}" in args.only.split(",")]
    print(f"guard {'off' if args.off else 'on: ' + args.remedies}; overrides {args.set or 'none'}; runs in {root}")
    print("| run | diverged at | gap > 1 at | recoveries | finished | accuracy | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    t0 = time.perf_counter()
    for preset, seed in runs:
        row = run_one(preset, seed, root / f"{preset}-s{seed}", guard, args.set)
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        print(f"| {row['run']} | {row['diverged_at'] or '-'} | {row['gap_over_1'] or '-'} | {row['recoveries']} | "
              f"{'yes' if row['finished'] else 'no'} | {acc} | {row['seconds']} |", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
