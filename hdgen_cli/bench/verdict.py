"""Verdicts on one comparison of a metric between two methods, from their per-seed values.

With e the difference of means in the claimed direction and se = sqrt(s_A^2/n_A + s_B^2/n_B) the
standard error of that difference (sample variances over seeds; 0 with a single seed):

- `higher` / `lower` (A better than B by at least the minimum effect `tol`):
  holds if e > tol and e > 2 se; does not hold if e + 2 se < tol; else inconclusive.
- `at_least` / `at_most` (A no worse than B, within `tol`):
  holds if e - 2 se >= -tol; does not hold if e + 2 se < -tol; else inconclusive.
- `within` (|mean A - mean B| <= tol): holds if |d| + 2 se <= tol; does not hold if |d| - 2 se > tol.
- `stable` (counts of divergences): holds if A never diverged and B did; does not hold otherwise
  (A diverged, or B never did, so no advantage was shown).

The 2 se bound is a two-sided ~95 % interval under normal seed noise (a Welch-style comparison of
means); with one seed there is no spread estimate and the verdict rests on `tol` alone, which the
claims table says. `tol` is absolute, or relative to |mean B| when `relative` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOLDS, FAILS, UNSURE, MISSING = "holds", "does not hold", "inconclusive", "not run"
DIRECTIONS = ("higher", "lower", "at_least", "at_most", "within", "stable")


def mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return m, math.sqrt(var)


@dataclass
class Outcome:
    verdict: str
    test: str


def compare(a: list[float], b: list[float], direction: str, tol: float = 0.0, relative: bool = False) -> Outcome:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    if not a or not b:
        return Outcome(MISSING, "no values")
    if direction == "stable":
        if sum(a) > 0:
            return Outcome(FAILS, f"A diverged {sum(a):g} time(s)")
        if sum(b) == 0:
            return Outcome(FAILS, "neither diverged: no stability advantage shown at this budget")
        return Outcome(HOLDS, f"A never diverged; B diverged {sum(b):g} time(s)")
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    se = math.sqrt(sa**2 / len(a) + sb**2 / len(b))
    tol = tol * abs(mb) if relative else tol
    d = ma - mb
    bound = "2 SE" if min(len(a), len(b)) > 1 else "no spread (1 seed)"
    if direction == "within":
        test = f"|d| {abs(d):.3g} vs tol {tol:.3g}, 2 SE {2 * se:.3g}"
        if abs(d) + 2 * se <= tol:
            return Outcome(HOLDS, test)
        return Outcome(FAILS if abs(d) - 2 * se > tol else UNSURE, test)
    e = d if direction in ("higher", "at_least") else -d
    test = f"d {e:+.3g} in the claimed direction; min effect {tol:.3g}; {bound} {2 * se:.3g}"
    if direction in ("higher", "lower"):
        if e > tol and e > 2 * se:
            return Outcome(HOLDS, test)
        return Outcome(FAILS if e + 2 * se < tol else UNSURE, test)
    if e - 2 * se >= -tol:
        return Outcome(HOLDS, test)
    return Outcome(FAILS if e + 2 * se < -tol else UNSURE, test)


def combine(verdicts: list[str]) -> str:
    """Several conditions or subjects: all must hold; any failure fails; a missing one is not run."""
    if MISSING in verdicts:
        return MISSING
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else UNSURE
