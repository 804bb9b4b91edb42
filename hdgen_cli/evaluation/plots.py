"""PNG plots written next to evaluation results (matplotlib, headless Agg backend)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hdgen_cli.distributed import is_main
from hdgen_cli.files import write_atomically


def pyplot():
    import matplotlib  # deferred: matplotlib is slow to import; only plotting commands need it

    matplotlib.use("Agg")  # no display needed; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path, layout: bool = True) -> Path:
    """Write the figure (rank 0 only under torchrun: every rank holds the same gathered results)."""

    if is_main():
        if layout:
            fig.tight_layout()
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def reliability_diagram(table: list[dict], ece: float, path: Path) -> Path:
    """Accuracy per confidence bin against the diagonal, each bar labelled with its image count,
    over a panel of the counts themselves (a bin of 4 images must not look like a bin of 51).
    The legend sits under the axes, where it covers nothing."""
    plt = pyplot()
    fig, (ax, below) = plt.subplots(2, 1, figsize=(4.2, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = table[0]["hi"] - table[0]["lo"]
    rows = [r for r in table if r["count"]]
    ax.bar([r["lo"] for r in rows], [r["accuracy"] for r in rows], width=width, align="edge",
           edgecolor="black", label="accuracy in the bin")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for r in rows:
        ax.text(r["lo"] + width / 2, min(r["accuracy"] + 0.02, 0.93), str(r["count"]), ha="center", va="bottom",
                fontsize=6, rotation=90 if len(rows) > 12 else 0)
    ax.set(xlim=(0, 1), ylim=(0, 1.0), ylabel="accuracy", title=f"ECE {100 * ece:.2f} %  (numbers: images per bin)")
    below.bar([r["lo"] for r in rows], [r["count"] for r in rows], width=width, align="edge", color="grey",
              edgecolor="black")
    below.set(xlim=(0, 1), xlabel="confidence", ylabel="images")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))  # room for the legend underneath
    return _save(plt, fig, path, layout=False)


def score_histogram(scores: dict[str, "list[float]"], title: str, auroc: float | None, path: Path) -> Path:
    """Overlaid histograms of one OOD score on the in-distribution set and an OOD set, titled with
    the AUROC that separates them."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in scores.items():
        ax.hist(values, bins=50, alpha=0.5, density=True, label=f"{name} ({len(values)})")
    ax.set(xlabel="score (higher = more in-distribution)", ylabel="density",
           title=title + (f"   AUROC {auroc:.3f}" if auroc is not None else ""))
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def robustness_curve(rows: list[dict], clean: float, title: str, path: Path) -> Path:
    """Robust accuracy against the attack budget eps (eps 0 is the clean accuracy)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot([0] + [255 * r["eps"] for r in rows], [clean] + [r["robust_accuracy"] for r in rows], "o-")
    ax.set(xlabel="eps (in 1/255 of the [0, 1] pixel range)", ylabel="robust accuracy", ylim=(0, 1))
    ax.set_title(textwrap.fill(title, 48), fontsize=9)  # the attack, its budget and the defence
    return _save(plt, fig, path)
