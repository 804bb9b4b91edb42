"""Markdown pieces shared by the bench's result pages: a mean ± std cell, a table, a summary."""

from __future__ import annotations

import math

from hdgen_cli.bench.verdict import mean_std


def cell(summary: dict, preset: str, key: str, scale: float = 1.0, digits: int = 1) -> str:
    """'mean ± std' of one metric of one preset (the std only with more than one seed); '–' if absent."""
    s = summary.get(preset, {}).get(key)
    if not s or s["mean"] is None or not math.isfinite(s["mean"]):
        return "–"
    text = f"{s['mean'] * scale:.{digits}f}"
    return text + (f" ± {s['std'] * scale:.{digits}f}" if s["n"] > 1 else "")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def summarize(values: dict[str, dict[str, list[float]]]) -> dict:
    """{preset: {metric: {mean, std, n}}} from per-seed values."""
    return {p: {k: dict(zip(("mean", "std"), mean_std(v)), n=len(v)) for k, v in m.items()} for p, m in values.items()}
