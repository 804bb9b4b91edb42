"""Would a person accept the samples of a trained run? The figures docs/sampling.md quotes.

Not a test (a run of the quickstart takes minutes to train): it measures, on one checkpoint,
the pixel-space checks of `hdgen_cli.evaluation.sample_quality` for
  - `hdgen sample --class K --steps S` with each conditional protocol (filter, the default, and
    energy, chains on E(x, y)), over several seeds;
  - `hdgen sample --steps S` (unconditional);
and prints each figure against its bar, then the mean and standard deviation over the seeds (one
draw of 64 moves a median by about 10 %, so one seed near a bar says little). The judge is an RBF SVC fitted on the run's training
split; the reference is its test split (the test images of class K for a class).

    hdgen train --preset quickstart
    python benchmarks/sample_quality.py                       # newest run, class 3, 600 steps
    python benchmarks/sample_quality.py runs/quickstart-... --steps 100 200 600 --out sq/
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hdgen_cli import api
from hdgen_cli.data import make_splits
from hdgen_cli.evaluation.sample_quality import fit_judge, sample_quality
from hdgen_cli.runs import newest_run, runs_root
from hdgen_cli.train.outputs import write_grid

# The bars a person-acceptable sample must meet: judged share (with judge confidence >= 0.8), realism at most, diversity at
# least, classes found among unconditional samples at least.
JUDGED, REALISM, DIVERSITY, CLASSES = 0.85, 1.25, 0.8, 8


def verdict(q: dict) -> str:
    ok = q["realism"] <= REALISM and q["diversity"] >= DIVERSITY
    ok = ok and (q["judged"] >= JUDGED if "judged" in q else q["classes"] >= CLASSES)
    return "pass" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="run directory or checkpoint (default: the newest run)")
    parser.add_argument("--klass", "--class", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[600])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--protocols", nargs="+", default=["filter", "energy"])
    parser.add_argument("--init", default="noise", choices=["noise", "buffer"],
                        help="fresh chains (noise) or chains from the saved replay buffer")
    parser.add_argument("--out", type=Path, help="write each sample grid here")
    args = parser.parse_args()

    run = args.run or newest_run(runs_root())
    if run is None:
        raise SystemExit("no run found; train one with `hdgen train --preset quickstart` or pass a run directory")
    loaded = api.load_model(run, device="cpu")
    splits = make_splits(loaded.config.data)
    train = splits.train.images.float() / 255
    test = splits.test.images.float() / 255
    judge = fit_judge(train, splits.train.labels)
    real_k = test[splits.test.labels == args.klass]
    print(f"run {loaded.checkpoint.path.parent}  judge test accuracy "
          f"{(judge.predict(test.flatten(1).double().numpy()) == splits.test.labels.numpy()).mean():.3f}")
    print(f"bars: judged >= {JUDGED}, realism <= {REALISM}, diversity >= {DIVERSITY}, classes >= {CLASSES}")
    print("what            steps seed  judged/classes realism diversity kept      seconds verdict")
    figures: dict[tuple[str, int], list[dict]] = {}
    for steps in args.steps:
        cases = [(f"class {args.klass} {p}", args.klass, p) for p in args.protocols] + [("unconditional", None, None)]
        for name, klass, protocol in cases:
            for seed in args.seeds:
                t0 = time.perf_counter()
                images, _, details = api.sample(loaded, n=64, steps=steps, y=klass, seed=seed, conditional=protocol,
                                                 init=args.init)
                seconds = time.perf_counter() - t0
                q = sample_quality(images, train, real_k if klass is not None else test, judge, klass)
                figures.setdefault((name, steps), []).append(q)
                first = f"{q['judged']:.3f}" if klass is not None else f"{q['classes']} classes"
                kept = f"{details['acceptance']:.2f}" if "acceptance" in details else "-"
                print(f"{name:15s} {steps:5d} {seed:4d}  {first:14s} {q['realism']:7.3f} {q['diversity']:9.3f} "
                      f"{kept:9s} {seconds:7.1f} {verdict(q)}", flush=True)
                if args.out:
                    args.out.mkdir(parents=True, exist_ok=True)
                    write_grid(images, "unit", args.out / f"{name.replace(' ', '-')}-{steps}-seed{seed}.png")

    print(f"\nmean +- std over seeds {args.seeds}")
    for (name, steps), qs in figures.items():
        mean = {k: statistics.mean(q[k] for q in qs) for k in ("realism", "diversity", "judged", "classes") if k in qs[0]}
        spread = {k: statistics.stdev(q[k] for q in qs) if len(qs) > 1 else 0.0 for k in mean}
        text = "  ".join(f"{k} {mean[k]:.3f} +- {spread[k]:.3f}" for k in mean)
        print(f"{name:15s} {steps:5d}  {text}  {verdict(mean)}")


if __name__ == "__main__":
    main()
