"""The two kinds of failure the CLI reports as one line: bad usage (exit 2) and runtime (exit 1)."""

from __future__ import annotations

import difflib

# A suggestion must be close: at 0.4, 'nosuch.key' got "did you mean 'optim.schedule'?". 0.6 still
# catches one- or two-letter slips ('optim.lrr', 'sampler.step', 'jempp-m7').
SUGGEST_CUTOFF = 0.6


def did_you_mean(name: str, choices) -> str | None:
    """The closest of `choices` to a mistyped `name`, or None when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=SUGGEST_CUTOFF)
    return close[0] if close else None


class HdgenError(Exception):
    """A failure with a message fit for one line of stderr: what is wrong and how to fix it."""

    exit_code = 1


class UsageError(HdgenError):
    """Bad input from the user: unknown preset or key, invalid value, wrong file. Exit code 2."""

    exit_code = 2


class DataError(HdgenError):
    """A dataset is missing, empty or unreadable. Exit code 1."""


class CheckpointError(HdgenError):
    """A checkpoint is missing, corrupt or does not match. Exit code 1."""
