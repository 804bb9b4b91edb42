"""The report page: one self-contained HTML file (every image embedded, no network access), or a
Markdown summary for terminals and pull requests."""

from __future__ import annotations

import base64
import html
import json
import time

from hdgen_cli.report.collect import RunData, file_png
from hdgen_cli.report.figures import training_curves
from hdgen_cli.report.summary import COLUMNS, newest_attacks, row

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.8em; max-width: 640px; }
img { image-rendering: pixelated; border: 1px solid #ddd; max-width: 100%; }
.missing { color: #888; font-style: italic; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
"""

SECTIONS = [("summary", "Summary"), ("curves", "Training curves"), ("samples", "Samples"),
            ("calibration", "Calibration"), ("ood", "Out-of-distribution detection"),
            ("robustness", "Adversarial robustness"), ("config", "Configuration")]


def _img(png: bytes | None, caption: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _table(rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(r[c]) or '&ndash;'}</td>" for c in COLUMNS) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _per_run(runs: list[RunData], body) -> str:
    if len(runs) == 1:
        return body(runs[0])
    return "".join(f"<h3>{html.escape(run.name)}</h3>{body(run)}" for run in runs)


def _samples(run: RunData) -> str:
    if not run.images:
        return _missing("no samples: this run has no replay buffer and none were drawn (hdgen sample)")
    note = "" if any(t.startswith("fresh samples, unconditional") for t in run.images) else _missing(
        "no fresh unconditional samples recorded yet: `hdgen sample --ckpt RUN --steps 600` adds them")
    return "".join(_img(png, title) for title, png in run.images.items()) + note


def _calibration(run: RunData) -> str:
    cal = run.latest("calibrate")
    if cal is None:
        return _missing("not evaluated: `hdgen calibrate --ckpt RUN`")
    return _img(file_png(cal.get("png")), f"reliability diagram, {cal.get('split')} split, ECE "
                f"{100 * cal['ece']:.2f} % over {cal.get('n')} images, {cal.get('protocol')} protocol")


def _ood(run: RunData) -> str:
    ood = run.latest("ood")
    if ood is None:
        return _missing("not evaluated: `hdgen ood --ckpt RUN`")
    return "".join(_img(file_png(r.get("png")), f"{r['score']}: {run.dataset} vs {r['ood']}, AUROC {r['auroc']:.3f}")
                   for r in ood.get("results", [])) or _missing("evaluated without plots")


def _robustness(run: RunData) -> str:
    attacks = newest_attacks(run)
    if not attacks:
        return _missing("not evaluated: `hdgen attack --ckpt RUN`")
    return "".join(_img(file_png(r.get("png")), f"{label} on {r.get('n')} test images, clean accuracy "
                        f"{100 * r['clean_accuracy']:.1f} %") if r.get("png") else
                   f"<p>{html.escape(label)}: success rate {100 * r.get('success_rate', 0):.0f} %</p>"
                   for label, r in attacks.items())


def _config(run: RunData) -> str:
    text = html.escape(json.dumps(run.config, indent=1))
    return f"<details><summary>{html.escape(run.name)}: resolved config</summary><pre>{text}</pre></details>"


def render_html(runs: list[RunData], figures: list[tuple[bytes, str]] | None = None) -> str:
    title = "hdgen report: " + ", ".join(run.name for run in runs)
    curves = training_curves(runs)
    parts = {
        "summary": _table([row(run) for run in runs]),
        "curves": _img(curves, "red line: divergence (dotted: the iteration it rolled back to); black: gave up")
        if curves else _missing("no training steps logged"),
        "samples": _per_run(runs, _samples),
        "calibration": _per_run(runs, _calibration),
        "ood": _per_run(runs, _ood),
        "robustness": _per_run(runs, _robustness),
        "config": "".join(_config(run) for run in runs),
    }
    sections_shown = list(SECTIONS)
    if figures:  # the bench with --at: one figure per claim, its metrics against training budget
        parts["budgets"] = "".join(_img(png, caption) for png, caption in figures)
        sections_shown.insert(2, ("budgets", "Claims by training budget"))
    nav = " | ".join(f'<a href="#{key}">{name}</a>' for key, name in sections_shown)
    sections = "".join(f'<section id="{key}"><h2>{name}</h2>{parts[key]}</section>' for key, name in sections_shown)
    made = time.strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>Written {made} by hdgen report from the run folders alone.</p><nav>{nav}</nav>{sections}</body></html>")


def render_markdown(runs: list[RunData]) -> str:
    rows = [row(run) for run in runs]
    lines = ["# hdgen report: " + ", ".join(run.name for run in runs), "",
             "| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join((r[c] or "–").replace("|", "/") for c in COLUMNS) + " |" for r in rows]
    for run in runs:
        diverged = [e for e in run.events if "divergence" in e]
        lines += ["", f"## {run.name}", "",
                  f"- {len(run.steps)} logged steps, {len(diverged)} divergence(s)"
                  + "".join(f"; at iteration {e['iter']} rolled back to {e.get('rolled_back_to')}" for e in diverged)]
        for command, records in run.evaluations.items():
            lines.append(f"- {command}: {len(records)} record(s), newest {records[-1].get('time')}")
    return "\n".join(lines) + "\n"
