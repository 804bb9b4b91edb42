"""`hdgen report`: one page that tells a run's story, or compares several runs.

It reads only the run folders (config.json, metrics.jsonl, evaluations/, samples.png and the
checkpoint's replay buffer) and writes one self-contained HTML file or a Markdown summary.
"""

from __future__ import annotations

from pathlib import Path

from hdgen_cli.errors import UsageError
from hdgen_cli.files import check_writable, write_text_atomically
from hdgen_cli.runs import CONFIG
from hdgen_cli.report.collect import RunData, collect
from hdgen_cli.report.page import render_html, render_markdown

FORMATS = {"html": render_html, "md": render_markdown}

__all__ = ["FORMATS", "RunData", "collect", "write_report"]


def write_report(runs: list[str | Path], out: str | Path | None = None, fmt: str = "html",
                 figures: list[tuple[bytes, str]] | None = None) -> Path:
    """Write the report of `runs` to `out` (default: RUN/report.<fmt> for one run, else
    ./report.<fmt>); inputs are checked before anything is read. `figures` (PNG bytes, caption)
    are the bench's per-claim figures, shown in a "Claims by training budget" section (HTML)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format '{fmt}'; use html or md")
    if not runs:
        raise UsageError("no run to report on; pass a run directory")
    folders = [Path(r) for r in runs]
    for folder in folders:
        if not (folder / CONFIG).is_file():
            raise UsageError(f"{folder} is not an hdgen run directory (no config.json); pass a folder `hdgen train` wrote")
    if len({f.resolve() for f in folders}) < len(folders):
        raise UsageError("a run is named twice; pass each run once")
    path = Path(out) if out else (folders[0] if len(folders) == 1 else Path(".")) / f"report.{fmt}"
    check_writable(path.parent, "--out")
    data = [collect(f) for f in folders]
    return write_text_atomically(path, render_html(data, figures) if fmt == "html" else FORMATS[fmt](data))
