"""The early sign of a runaway: the logged E gap rising well above its recent median
(docs/stability.md). The recovery policy (train/guard.py) keeps no new good state while it is up."""

from __future__ import annotations

import math


class EarlySign:
    """The early sign of a runaway (docs/stability.md): the logged E gap, E(samples) - E(data),
    rising more than `rise` above the median of the last `window` logged gaps (log lines, not
    iterations). A healthy run's gap moves by a tenth of that; on the divergence suite a runaway's
    passes it 17-35 iterations before the gap limit. While it is raised the trainer keeps no new
    good state and writes no last.safetensors, so a roll-back, and a resume, land before the
    rise. Its history is saved in checkpoints, so a resumed run raises it where the first one did.
    After a roll-back it keeps the gaps logged up to the state rolled back to; fewer than
    MIN_HISTORY of them and it waits for more before it can rise again."""

    MIN_HISTORY = 5  # log lines before the sign can be raised (the baseline needs a few)

    def __init__(self, rise: float, window: int = 20, history: list | None = None):
        self.rise, self.window = rise, window
        self.history = [(int(i), float(g)) for i, g in (history or [])][-window:]  # (iteration, gap)
        self.raised = False

    def update(self, iteration: int, gap: float | None) -> float | None:
        """Fold in one logged gap; returns its rise above the baseline when this raises the sign."""
        if not self.rise:  # off (also when a resume turns it off on a checkpoint saved while raised)
            self.raised = False
            return None
        if gap is None or not math.isfinite(gap):
            return None
        was = self.raised
        gaps = [g for _, g in self.history]
        baseline = _median(gaps) if len(gaps) >= self.MIN_HISTORY else None
        self.raised = baseline is not None and gap - baseline > self.rise
        self.history = (self.history + [(iteration, gap)])[-self.window:]
        return gap - baseline if self.raised and not was else None

    def roll_back(self, iteration: int) -> None:
        """Forget what was logged after the state the run rolls back to."""
        self.history = [(i, g) for i, g in self.history if i <= iteration]
        self.raised = False

    def to_dict(self) -> dict:
        return {"history": [list(h) for h in self.history], "raised": self.raised}

    @classmethod
    def from_dict(cls, rise: float, d: dict | None) -> "EarlySign":
        sign = cls(rise, history=(d or {}).get("history"))
        sign.raised = bool(rise) and bool((d or {}).get("raised", False))
        return sign


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
