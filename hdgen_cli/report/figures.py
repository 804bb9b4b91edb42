"""Training curves for the report: every loss term, E(data) and E(samples) and their gap, lr,
accuracy and buffer FID, one line per run, with divergences and roll-backs marked."""

from __future__ import annotations

import io

from hdgen_cli.evaluation.plots import pyplot
from hdgen_cli.report.collect import RunData

NOT_TERMS = {"kind", "iter", "epoch", "lr", "it/s", "acc", "e_data", "e_samples", "gap"}


def _series(steps: list[dict], key: str) -> tuple[list, list]:
    pts = [(r["iter"], r[key]) for r in steps if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _panels(runs: list[RunData]) -> list[tuple[str, list[tuple[str, RunData, list, list]]]]:
    """(title, [(label, run, x, y)]) for every panel that has data."""
    several = len(runs) > 1
    terms = sorted({k for run in runs for r in run.steps for k, v in r.items()
                    if k not in NOT_TERMS and isinstance(v, (int, float))}, key=lambda k: (k != "loss", k))
    panels = []

    def lines(keys, source="steps"):
        out = []
        for run in runs:
            for key in keys:
                if source == "steps":
                    x, y = _series(run.steps, key)
                else:
                    x, y = _series([e for e in run.events if "iter" in e], key)
                if x:
                    out.append((f"{run.name}: {key}" if several else key, run, x, y))
        return out

    if several:  # one panel per term keeps runs comparable
        panels += [(f"loss term: {t}", lines([t])) for t in terms]
    else:
        panels.append(("loss and its terms", lines(terms)))
    panels.append(("E(data), E(samples) and gap = E(samples) - E(data)", lines(["e_data", "e_samples", "gap"])))
    panels.append(("learning rate", lines(["lr"])))
    panels.append(("accuracy (training batches; valid per epoch)", lines(["acc"]) + lines(["valid_accuracy"], "events")))
    panels.append(("buffer FID (train.fid_every)", lines(["fid"], "events")))
    return [(title, found) for title, found in panels if found]


def training_curves(runs: list[RunData], dpi: int = 80) -> bytes | None:
    """One PNG of all panels, or None when no run has logged a training step."""

    panels = _panels(runs)
    if not panels:
        return None
    plt = pyplot()
    cols = 2
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.2 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, found) in zip(axes.flat, panels):
        for i, (label, run, x, y) in enumerate(found):
            colour = colours[(runs.index(run) if len(runs) > 1 else i) % len(colours)]
            style = "--" if label.endswith("e_samples") else (":" if label.endswith("gap") else "-")
            ax.plot(x, y, style, color=colour, label=label, linewidth=1.2, marker="o" if len(x) < 3 else None)
        for run in runs:  # divergences: red line at the iteration, dotted back to where the state came from
            for event in run.events:
                if "divergence" in event:
                    ax.axvline(event["iter"], color="red", linewidth=1)
                    if "rolled_back_to" in event:
                        ax.axvline(event["rolled_back_to"], color="red", linewidth=1, linestyle=":")
                elif event.get("gave_up"):
                    ax.axvline(run.steps[-1]["iter"] if run.steps else 0, color="black", linewidth=1.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        if "rate" in title:
            ax.set_yscale("log")
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
