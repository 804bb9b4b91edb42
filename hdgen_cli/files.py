"""Crash-safe file writes: a kill at any moment leaves either the old file or the new one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from hdgen_cli.errors import UsageError

TMP_MARK = ".tmp-"


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`write(tmp)` fills a temporary file beside `path`; it is fsynced and renamed over `path`, and
    the directory entry fsynced, so `path` is never seen half written. A failed write removes the
    temporary file and leaves `path` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # some writers (safetensors) create 0600; follow the umask like open()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def check_writable(folder: str | Path, flag: str) -> Path:
    """Create `folder` if needed and prove a file can be written in it, before any work is done;
    else one UsageError naming the option to change."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".hdgen-write-test{TMP_MARK}{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to {folder} ({exc.strerror or exc}); pass a writable {flag}") from None
    return folder


def write_text_atomically(path: str | Path, text: str) -> Path:
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unfinished_writes(folder: Path) -> list[Path]:
    """Temporary files a killed process left behind (`.<name>.tmp-<pid>`)."""
    return sorted(p for p in folder.glob(f".*{TMP_MARK}*") if p.is_file()) if folder.is_dir() else []
