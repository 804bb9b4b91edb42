"""Claims against training budget (`hdgen bench --at 1000,3000,10000`).

Every run trains one schedule, that of the largest budget (`train.max_iters`, so the LR decays
where that run's schedule puts them), and keeps a checkpoint at each smaller budget
(`train.keep_iters`). Each kept checkpoint is evaluated with the full protocol, so a smaller
budget is a point on the largest run's curve, not a shorter run of its own; the results say so.
"""

from __future__ import annotations

import json
from pathlib import Path

from hdgen_cli.bench.claims import CLAIMS, check
from hdgen_cli.bench.figures import claim_figure
from hdgen_cli.bench.tables import cell, summarize, table
from hdgen_cli.errors import UsageError
from hdgen_cli.runs import LAST, divergences, kept_name


def parse_at(text: str | None) -> list[int]:
    """'1000,3000,10000' -> [1000, 3000, 10000] (sorted, distinct); one-line errors otherwise."""
    if text is None or not text.strip():
        return []
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"--at {text!r} is not a comma-separated list of iterations, e.g. --at 1000,3000,10000") from None
    if not values or values[0] < 1:
        raise UsageError(f"--at {text!r}: every budget must be a whole number of iterations >= 1")
    return values


def budget_overrides(at: list[int]) -> list[str]:
    """The config lines that make a run's schedule the largest budget and keep the others."""
    if not at:
        return []
    return [f"train.max_iters={at[-1]}", f"train.keep_iters=[{','.join(str(b) for b in at[:-1])}]"]


def schedule_note(at: list[int]) -> str:
    return (f"one schedule of {at[-1]} iterations per run (its LR schedule is that of the largest budget); "
            f"the smaller budgets ({', '.join(str(b) for b in at[:-1]) or 'none'}) are checkpoints kept on the way "
            f"and evaluated with the same protocol, not shorter runs")


def checkpoint_at(run_dir: Path, budget: int, at: list[int]) -> Path:
    return run_dir / (LAST if budget == at[-1] else kept_name(budget))


def evaluate_budgets(run_dir: Path, at: list[int], final_metrics: dict, evaluate, finished: bool) -> dict[str, dict]:
    """{budget: metrics} for one run; `evaluate(ckpt, out_dir)` runs the protocol on one checkpoint.
    The largest budget is the run's own result when it finished; a budget the run never reached
    (the guard gave up before it) has no metrics."""
    out = {}
    for budget in at:
        if budget == at[-1]:
            out[str(budget)] = final_metrics if finished else {}
            continue
        ckpt = checkpoint_at(run_dir, budget, at)
        out[str(budget)] = evaluate(ckpt, run_dir / "bench" / f"at-{budget}") if ckpt.is_file() else {}
    return out


def budget_values(out: Path, runs, budget: int, costs: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """values[preset][metric] = per-seed values at one budget, as `bench.claims.check` reads them."""
    values: dict[str, dict[str, list[float]]] = {}
    for preset, seed, _ in runs:
        run_dir = out / f"{preset}-s{seed}"
        result = json.loads((run_dir / "result.json").read_text())
        metrics = result.get("budgets", {}).get(str(budget), {})
        train = result.get("train", {})
        if train.get("status") == "diverged" and budget > (train.get("checkpoint_iteration") or 0):
            metrics = {}  # the guard gave up before this budget: its last good checkpoint is an earlier one
        mine = values.setdefault(preset, {})
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and value is not None:
                mine.setdefault(key, []).append(float(value))
        mine.setdefault("divergences", []).append(float(divergences(run_dir, until=budget)))
        mine.setdefault("diverged", []).append(0.0 if metrics else 1.0)
        if seed == 1 and preset in costs:
            mine["step_seconds"] = list(costs[preset])
            mine["train_cost"] = [t * budget for t in costs[preset]]
    return values


def by_budget(out: Path, runs, at: list[int], costs: dict[str, list[float]]) -> dict[str, dict]:
    """{budget: {"summary": mean/std/n per preset and metric, "claims": verdicts}} for every budget."""
    out_table = {}
    for budget in at:
        values = budget_values(out, runs, budget, costs)
        out_table[str(budget)] = {"summary": summarize(values), "claims": check(values)}
    return out_table


BUDGET_METRICS = (("accuracy", "acc %", 100, 1), ("ece", "ECE %", 100, 1), ("confidence_gap", "conf - acc %", 100, 1),
                  ("ece_ts", "ECE % after T", 100, 1), ("temperature", "T", 1, 2), ("lse", "LSE", 1, 2),
                  ("auroc.logpx.mean", "AUROC log p(x)", 1, 3), ("pgd.8", "PGD 8/255 %", 100, 1),
                  ("fid.fresh", "FID fresh", 1, 1))


def markdown_lines(results: dict) -> list[str]:
    """The results.md sections of a bench run with --at: claims by budget, metrics by budget."""
    at, per_budget = results["budgets"], results["by_budget"]
    lines = ["## Claims by training budget", "", f"Budgets in iterations: {results['schedule']}.", ""]
    header = ["claim", *(f"{b} it" for b in at)]
    rows = [[claim.id, *(f"**{_verdict(per_budget[str(b)]['claims'], claim.id)}**" for b in at)] for claim in CLAIMS]
    lines += table(header, rows)
    lines += ["", "## Metrics by training budget", ""]
    for key, name, scale, digits in BUDGET_METRICS:
        lines += [f"**{name}**", ""]
        lines += table(["method", *(f"{b} it" for b in at)],
                        [[m, *(cell(per_budget[str(b)]["summary"], m, key, scale, digits) for b in at)]
                         for m in results["presets"]])
        lines.append("")
    return lines


def _verdict(claims: list[dict], claim_id: str) -> str:
    return next(c["verdict"] for c in claims if c["id"] == claim_id)


def claim_figures(results: dict) -> list[tuple[bytes, str]]:
    """One PNG per claim that has a subject in the grid: each condition's metric, mean ± std over
    seeds against iterations, one line per method (the claim's subjects and its baseline)."""

    at, per_budget, ran = results["budgets"], results["by_budget"], set(results["presets"])
    figures = []
    for claim in CLAIMS:
        methods = [m for m in (*claim.subjects, claim.baseline) if m in ran]
        if claim.baseline not in ran or len(methods) < 2:
            continue
        verdicts = [_verdict(per_budget[str(b)]["claims"], claim.id) for b in at]
        panels = [(cond.metric if cond.baseline_metric is None else f"{cond.metric} vs {cond.baseline_metric}",
                   {m: [per_budget[str(b)]["summary"].get(m, {}).get(cond.baseline_metric if m == claim.baseline and
                                                               cond.baseline_metric else cond.metric)
                        for b in at] for m in methods}) for cond in claim.conditions]
        png = claim_figure(claim.id, claim.statement, at, panels, verdicts, results["presets"])
        figures.append((png, f"{claim.id}: {claim.statement} (verdict per budget: "
                             + ", ".join(f"{b} it {v}" for b, v in zip(at, verdicts)) + ")"))
    return [*figures, scale_figure(results)]


SCALE_PANELS = ("confidence_gap", "temperature", "lse", "margin")


def scale_figure(results: dict) -> tuple[bytes, str]:
    """Why a classifier is over- or underconfident, against budget: mean confidence minus accuracy,
    the fitted temperature, and the logit scale (mean LSE, top-2 margin), every method."""

    at, per_budget, ran = results["budgets"], results["by_budget"], results["presets"]
    panels = [(key, {m: [per_budget[str(b)]["summary"].get(m, {}).get(key) for b in at] for m in ran})
              for key in SCALE_PANELS]
    png = claim_figure("calibration scale", "confidence - accuracy, temperature T, mean LSE f(x) and top-2 margin "
                       "on test images, against training budget", at, panels, ["" for _ in at], ran)
    return png, ("calibration scale: mean confidence minus accuracy (< 0 underconfident), the NLL-fitted "
                 "temperature (< 1: logits too small), mean logsumexp of the logits and mean top-2 margin")
