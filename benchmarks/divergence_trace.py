"""Per-step trace of one divergence-suite run into its runaway, beside a twin that does not run away,
and the plot of both (docs/stability.md, "What moves first").

    python benchmarks/divergence_trace.py                      # jempp-m5 seed 1 and its model.norm=none twin
    python benchmarks/divergence_trace.py --preset sada-jem-k5 --seed 1 --twin optim.momentum=0

Each step records the loss, E(data), E(samples), their gap, the gradient and weight norms and the
fraction of sample pixels at the clamp bounds. The guard is off (stop at the first divergence);
the twin is cut at the same iteration. Writes TRACE.jsonl and TRACE.png under --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import hdgen_cli.train.trainer as trainer
from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.runs import read_metrics
from hdgen_cli.train.guard import TrainingDiverged


class _Cut(Exception):
    pass


def trace(preset: str, seed: int, overrides: list[str], out: Path, stop_at: int | None = None) -> list[dict]:
    """Train one small-profile digits run with the guard off, recording every step."""
    cfg = load_profile("small").config(preset, ["data.name=digits", f"train.seed={seed}", "train.log_every=5",
                                                "train.guard.on_divergence=stop", *overrides])
    rows, step = [], trainer.train_step

    def recorded(model, objective, optimizer, *args, **kwargs):
        out = step(model, objective, optimizer, *args, **kwargs)
        params = [p for p in model.parameters() if p.grad is not None]
        row = {"iter": len(rows) + 1, "loss": float(out.loss.detach()),
               "grad_norm": float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))),
               "weight_norm": float(torch.linalg.vector_norm(torch.stack([p.detach().norm() for p in params])))}
        for key in ("e_data", "e_samples"):
            if key in out.stats:
                row[key] = float(out.stats[key])
        if "e_data" in row and "e_samples" in row:
            row["gap"] = row["e_samples"] - row["e_data"]
        if out.samples is not None:  # pixels in [-1, 1] (symmetric) or [0, 1]: at a bound within 1 %
            s = out.samples.detach()
            low = -1.0 if cfg.data.pixel_range == "symmetric" else 0.0
            row["saturated"] = float(((s <= low + 0.01) | (s >= 0.99)).float().mean())
        rows.append(row)
        if stop_at is not None and len(rows) >= stop_at:
            raise _Cut
        return out

    trainer.train_step = recorded
    try:
        trainer.train(cfg, out, quiet=True)
    except (TrainingDiverged, _Cut):
        pass
    finally:
        trainer.train_step = step
    return rows


def plot(runs: dict[str, list[dict]], early: int | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = [("E(data) (solid) and E(samples) (dashed)", ["e_data", "e_samples"]),
              ("gap E(samples) - E(data)", ["gap"]), ("gradient norm (solid), weight norm / 10 (dashed)",
                                                       ["grad_norm", "weight_norm"]),
              ("fraction of sample pixels at a clamp bound", ["saturated"])]
    for ax, (title, keys) in zip(axes.flat, panels):
        for (name, rows), colour in zip(runs.items(), ["tab:red", "tab:blue"]):
            for key, style in zip(keys, ["-", "--"]):
                xs = [r["iter"] for r in rows if key in r]
                ys = [r[key] / (10 if key == "weight_norm" else 1) for r in rows if key in r]
                ax.plot(xs, ys, style, color=colour, lw=1, label=name if style == "-" else None)
        if early is not None:
            ax.axvline(early, color="grey", lw=0.8, ls=":")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 1].set_yscale("symlog", linthresh=1.0)
    axes[0, 0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("iteration")
    fig.suptitle("into the runaway (dotted: the guard's early sign)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="jempp-m5")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--twin", nargs="*", default=["model.norm=none"], help="the twin's overrides")
    parser.add_argument("--out", default="divergence-trace")
    args = parser.parse_args()
    out = Path(args.out)
    name = f"{args.preset}-s{args.seed}"
    runaway = trace(args.preset, args.seed, [], out / name)
    twin = trace(args.preset, args.seed, args.twin, out / f"{name}-twin", stop_at=len(runaway))
    events = read_metrics(out / name)
    early = next((e["iter"] for e in events if "early_sign" in e), None)
    with open(out / "TRACE.jsonl", "w") as f:
        for label, rows in ((name, runaway), (" ".join(args.twin), twin)):
            for row in rows:
                f.write(json.dumps({"run": label, **row}) + "\n")
    plot({name: runaway, f"{name} {' '.join(args.twin)}": twin}, early, out / "TRACE.png")
    last = runaway[-1]
    print(f"{name}: stopped at iteration {last['iter']} (early sign at {early}); twin ran to {twin[-1]['iter']}")
    for label, rows in ((name, runaway), ("twin", twin)):
        for at in (50, 150, early or 0, len(runaway)):
            r = rows[min(at, len(rows)) - 1]
            print(f"  {label:>8} it {r['iter']:>4}: " + "  ".join(f"{k} {r[k]:.3g}" for k in
                                                             ("e_data", "e_samples", "gap", "grad_norm",
                                                              "weight_norm", "saturated") if k in r))
    print(f"wrote {out / 'TRACE.png'} and {out / 'TRACE.jsonl'}")


if __name__ == "__main__":
    main()
