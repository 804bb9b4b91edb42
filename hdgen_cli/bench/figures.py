"""The bench's per-claim figure: a claim's metrics against training budget, mean ± std over seeds."""

from __future__ import annotations

import io
import textwrap

from hdgen_cli.evaluation.plots import pyplot

PERCENT = ("accuracy", "ece", "ece_ts", "confidence_gap", "pgd.")


def claim_figure(claim_id: str, statement: str, at: list[int], panels: list[tuple[str, dict[str, list]]],
                 verdicts: list[str], methods: list[str] | None = None) -> bytes:
    """PNG bytes: one panel per condition; x = iterations (log scale), one line per method with a
    band of ± one standard deviation over seeds; the verdict at each budget under the x axis.
    `methods` (the bench's preset list) fixes each method's colour across figures."""
    plt = pyplot()
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = list(methods or [])
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (metric, series) in zip(axes.flat, panels):
        scale = 100 if metric.startswith(PERCENT) else 1
        for method, points in series.items():
            xs = [b for b, p in zip(at, points) if p and p.get("mean") is not None]
            means = [p["mean"] * scale for p in points if p and p.get("mean") is not None]
            stds = [p["std"] * scale for p in points if p and p.get("mean") is not None]
            if not xs:
                continue
            if method not in order:
                order.append(method)
            line, = ax.plot(xs, means, marker="o", label=method, color=palette[order.index(method) % len(palette)])
            ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=line.get_color(), alpha=0.18, linewidth=0)
        ax.set_xscale("log")
        if metric == "temperature":  # T is a ratio: 0.5 and 2 are equally far from 1
            ax.set_yscale("log")
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.minorticks_off()  # the budgets are the only ticks
        ax.set_xticks(at)
        ax.set_xticklabels([f"{b}\n{v}" for b, v in zip(at, verdicts)], fontsize=8)
        ax.set_xlabel("training iterations" + (" (verdict at that budget)" if any(verdicts) else ""), fontsize=8)
        ax.set_ylabel(metric + (" (%)" if scale == 100 else ""), fontsize=9)
        if metric == "temperature":  # readable ratios on the log axis: 0.2, 0.5, 1, 2, ...
            low, high = ax.get_ylim()
            ticks = [t for t in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100,
                                 200, 500, 1000) if low <= t <= high]
            ax.minorticks_off()
            ax.set_yticks(ticks)
            ax.set_yticklabels([f"{t:g}" for t in ticks])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(f"{claim_id}: {statement}", 62 * cols)), fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
