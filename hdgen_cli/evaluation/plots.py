"""PNG plots written next to evaluation results (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

from hdgen_cli.files import write_atomically


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    """Write the figure (rank 0 only under torchrun: every rank holds the same gathered results)."""
    from hdgen_cli.distributed import is_main

    if is_main():
        fig.tight_layout()
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def reliability_diagram(table: list[dict], ece: float, path: Path) -> Path:
    """Accuracy per confidence bin against the diagonal, with the ECE in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    width = table[0]["hi"] - table[0]["lo"]
    rows = [r for r in table if r["count"]]
    ax.bar([r["lo"] for r in rows], [r["accuracy"] for r in rows], width=width, align="edge",
           edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"ECE {100 * ece:.2f} %")
    ax.legend(loc="upper left")
    return _save(plt, fig, path)


def score_histogram(scores: dict[str, "list[float]"], title: str, path: Path) -> Path:
    """Overlaid histograms of one OOD score on the in-distribution set and an OOD set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in scores.items():
        ax.hist(values, bins=50, alpha=0.5, density=True, label=name)
    ax.set(xlabel="score (higher = more in-distribution)", ylabel="density", title=title)
    ax.legend()
    return _save(plt, fig, path)


def robustness_curve(rows: list[dict], clean: float, title: str, path: Path) -> Path:
    """Robust accuracy against the attack budget eps (eps 0 is the clean accuracy)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot([0] + [r["eps"] for r in rows], [clean] + [r["robust_accuracy"] for r in rows], "o-")
    ax.set(xlabel="eps ([0, 1] scale)", ylabel="robust accuracy", ylim=(0, 1), title=title)
    return _save(plt, fig, path)
