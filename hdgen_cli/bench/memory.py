"""Peak memory of one training run: the CUDA allocator's peak on a GPU, else the process's peak
resident memory during the run, sampled every 20 ms (Python and torch included)."""

from __future__ import annotations

import os
import threading

import torch

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):  # not Linux
        return None


class PeakMemory:
    def __init__(self, device: str = "auto"):
        self.cuda = torch.cuda.is_available() and device != "cpu"
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._top = None

    def __enter__(self):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return self
        self._top = _rss_bytes()  # None where /proc is not there
        if self._top is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            now = _rss_bytes() or 0
            self._top = max(self._top, now)

    def __exit__(self, *exc):
        if self.cuda:
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        elif self._top is not None:
            self._stop.set()
            self._thread.join()
            self._top = max(self._top, _rss_bytes() or 0)
            self.peak_mb = self._top / 2**20
        return False
