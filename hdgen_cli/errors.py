"""The two kinds of failure the CLI reports as one line: bad usage (exit 2) and runtime (exit 1)."""


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
