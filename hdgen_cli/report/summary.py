"""The summary table's cells for one run: what was trained and every evaluated number, taken from
the newest record of each evaluation (or the training log when nothing was recorded)."""

from __future__ import annotations

from hdgen_cli.progress import clock
from hdgen_cli.report.collect import RunData

COLUMNS = ["run", "method", "data", "iterations", "train time", "guard", "accuracy", "ECE", "OOD AUROC", "robust accuracy", "FID"]


def _eps(e: float) -> str:
    k = e * 255
    return f"{k:.0f}/255" if abs(k - round(k)) < 1e-6 else f"{e:g}"


def attack_label(record: dict) -> str:
    defence = record.get("defense", "none")
    return f"{record.get('attack')}-{record.get('steps')}" + ("" if defence == "none" else f" + BPDA+EOT {defence}")


def newest_attacks(run: RunData) -> dict[str, dict]:
    """The newest attack record per attack and defence (`attack_label`), oldest label first."""
    return {attack_label(record): record for record in run.evaluations.get("attack", [])}


def guard_cell(events: list[dict]) -> str:
    """What the divergence guard did, so a result obtained with its remedies says so: the
    roll-backs, how the run ended (its last finish or give-up event) and the remedies applied."""
    rolls = [e for e in events if "divergence" in e]
    ends = [e for e in events if e.get("gave_up") or "seconds" in e]
    if not rolls and not (ends and ends[-1].get("gave_up")):
        return ""
    state = "gave up" if ends and ends[-1].get("gave_up") else "rescued" if ends else "unfinished"
    applied = ", ".join(rolls[-1].get("applied") or []) if rolls else ""
    return f"{len(rolls)} roll-back(s), {state}" + (f"; remedies {applied}" if applied else "")


def row(run: RunData) -> dict[str, str]:
    """COLUMNS -> text ('' for what was never evaluated)."""
    out = dict.fromkeys(COLUMNS, "")
    out.update(run=run.name, method=run.method, data=run.dataset)
    finished = [e for e in run.events if "seconds" in e]
    last_iter = max([r["iter"] for r in run.steps] + [e.get("iter", 0) for e in finished] + [0])
    out["iterations"] = str(last_iter) if last_iter else ""
    if finished:
        out["train time"] = clock(sum(e["seconds"] for e in finished))
    out["guard"] = guard_cell(run.events)
    evaluated = run.latest("evaluate")
    tested = [e for e in run.events if e.get("test_accuracy") is not None]
    if evaluated and evaluated.get("accuracy") is not None:
        out["accuracy"] = f"{100 * evaluated['accuracy']:.1f} %"
    elif tested:
        out["accuracy"] = f"{100 * tested[-1]['test_accuracy']:.1f} %"
    if (cal := run.latest("calibrate")) is not None:
        out["ECE"] = f"{100 * cal['ece']:.1f} %"
    if (ood := run.latest("ood")) is not None:
        out["OOD AUROC"] = "; ".join(f"{r['score']} vs {r['ood']} {r['auroc']:.3f}" for r in ood.get("results", []))
    cells = []
    for label, record in newest_attacks(run).items():
        if "results" in record:
            cells.append(f"{label}: " + ", ".join(f"{_eps(r['eps'])} {100 * r['robust_accuracy']:.0f} %"
                                                   for r in record["results"]))
        elif "success_rate" in record:
            cells.append(f"{label}: success {100 * record['success_rate']:.0f} %")
    out["robust accuracy"] = "; ".join(cells)
    if (gen := run.latest("generation")) is not None:
        out["FID"] = f"{gen['fid']:.1f} ({gen.get('protocol')}, n {gen.get('n')})"
    return out
