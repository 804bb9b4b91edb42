"""Collect a bench grid's per-run results into results.json and a results.md laid out like the
papers' tables (mean +- std over seeds), with the claims table and the settings used."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from hdgen_cli.bench.budgets import markdown_lines
from hdgen_cli.bench.claims import check
from hdgen_cli.bench.profiles import load_profile
from hdgen_cli.bench.protocol import ood_sets
from hdgen_cli.bench.tables import cell, summarize, table
from hdgen_cli.files import write_text_atomically

COST = ("iterations", "s_per_iter", "cpu_s_per_iter", "train_seconds", "peak_memory_mb", "divergences", "recoveries")


def _run_values(result: dict) -> dict[str, float]:
    """One run's metrics plus its cost figures, numbers only."""
    train = result.get("train", {})
    values = {k: v for k, v in result.get("metrics", {}).items() if isinstance(v, (int, float)) and v is not None}
    values.update({k: train[k] for k in COST if isinstance(train.get(k), (int, float))})
    values["diverged"] = 1.0 if train.get("status") == "diverged" else 0.0
    values["rescued"] = 1.0 if train.get("rescued") else 0.0
    return values


def collect(spec, runs, features_kind: str, features: str | None, costs: dict[str, list[float]]) -> dict:
    per_run, values = [], {}
    for preset, seed, cfg in runs:
        result = json.loads((spec.out / f"{preset}-s{seed}" / "result.json").read_text())
        per_run.append(result)
        for k, v in _run_values(result).items():
            values.setdefault(preset, {}).setdefault(k, []).append(float(v))
    for preset, seed, cfg in runs:  # interleaved step times: one value per timing round (bench.cost)
        if seed == 1 and preset in costs:
            values.setdefault(preset, {})["step_seconds"] = list(costs[preset])
            iterations = values[preset].get("iterations")  # a finished run's length
            if iterations:  # the whole run's cost at the interleaved rate
                values[preset]["train_cost"] = [t * iterations[0] for t in costs[preset]]
    summary = summarize(values)
    profile = load_profile(spec.profile)
    dataset = runs[0][2].data.name
    return {
        "dataset": dataset, "profile": spec.profile, "presets": list(spec.presets), "seeds": spec.seeds,
        "overrides": list(spec.overrides),
        "features": {"kind": features_kind, "checkpoint": features,
                     "note": "one fixed network embeds every method's samples"},
        "protocol": {**spec.protocol.to_dict(), "ood_sets": ood_sets(spec.protocol, dataset)},
        "profile_overrides": {p: profile.overrides(p) for p in spec.presets},
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "runs": per_run, "values": values, "summary": summary, "claims": check(values),
    }


def write_results(out: Path, results: dict) -> None:
    write_text_atomically(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    write_text_atomically(out / "results.md", markdown(results))


def _remedies(results: dict, preset: str) -> str:
    """The guard's remedies the rescued runs of `preset` were obtained with."""
    used = sorted({x for run in results["runs"] if run.get("preset") == preset and run.get("train", {}).get("rescued")
                   for x in run["train"].get("remedies") or []})
    return ", ".join(used) or "none"


def markdown(r: dict) -> str:
    s, presets, p = r["summary"], r["presets"], r["protocol"]
    feats = r["features"]["kind"] + (f" ({r['features']['checkpoint']})" if r["features"]["checkpoint"] else "")
    lines = [f"# hdgen bench: {r['dataset']}, profile `{r['profile']}`, {r['seeds']} seed(s)", "",
             f"Mean ± std over seeds. Clean protocol (no input noise), eval mode, last checkpoint. FID/IS features: "
             f"{feats}, the same network for every method.", "",
             "## Classification, calibration and generation", ""]
    lines += table(["method", "acc %", "NLL", f"ECE % ({p['ece_bins']} bins)",
                     f"FID fresh ({p['fid_n']}, {p['fid_steps']} steps)", "IS fresh", "FID buffer", "IS buffer"],
                    [[m, cell(s, m, "accuracy", 100), cell(s, m, "nll", 1, 3), cell(s, m, "ece", 100),
                      cell(s, m, "fid.fresh", 1, 2), cell(s, m, "is.fresh", 1, 2), cell(s, m, "fid.buffer", 1, 2),
                      cell(s, m, "is.buffer", 1, 2)] for m in presets])
    lines += ["", "## Calibration: scale or shape", "",
              "Raw ECE is what the papers claim about. Mean confidence minus accuracy says over- (> 0) or "
              "underconfident (< 0); T is the temperature that minimises NLL on held-out images (T < 1: the "
              "logits are too small) and the ECE after dividing by it says how much of the raw ECE a single scale "
              "explains (without a validation split, T is fitted on a seeded half of the test images and the scaled "
              "ECE measured on the other half, whose fewer images bias an ECE upward). LSE is the mean logsumexp of the logits on test images (-E(x) for the JEM family), "
              "margin the mean gap between the two largest logits.", ""]
    lines += table(["method", "ECE %", "confidence - accuracy %", "T", "ECE % after T", "LSE", "top-2 margin"],
                    [[m, cell(s, m, "ece", 100), cell(s, m, "confidence_gap", 100), cell(s, m, "temperature", 1, 3),
                      cell(s, m, "ece_ts", 100), cell(s, m, "lse", 1, 2), cell(s, m, "margin", 1, 2)]
                     for m in presets])
    sets = p["ood_sets"] + ["mean"]
    lines += ["", "## OOD detection (AUROC, in-distribution test images positive)", ""]
    for score in ("logpx", "maxprob", "grad-norm"):
        lines += [f"**{score}**", ""]
        lines += table(["method", *sets], [[m, *(cell(s, m, f"auroc.{score}.{o}", 1, 3) for o in sets)] for m in presets])
        lines.append("")
    eps = p["pgd_eps"]
    lines += [f"## Robust accuracy % (PGD-{p['pgd_steps']} L-inf, {p['attack_n']} test images; BPDA+EOT: "
              f"{p['bpda_steps']} PGD steps through {p['bpda_purify_steps']} steps of the method's own sampler, "
              f"EOT {p['bpda_eot']}, {p['bpda_votes']} votes, {p['bpda_n']} images)", ""]
    lines += table(["method", "clean", *(f"{e}/255" for e in eps), f"BPDA+EOT {p['bpda_eps']}/255"],
                    [[m, cell(s, m, "clean_accuracy_attack_subset", 100), *(cell(s, m, f"pgd.{e}", 100) for e in eps),
                      cell(s, m, f"bpda.{p['bpda_eps']}", 100)] for m in presets])
    lines += ["", "## Cost", "", "Measured on this machine. A run's own times move with whatever else the machine "
              "runs, so the cost claims read the interleaved step times: after the grid, every round times one "
              "training step of every method back to back (median ± std over rounds).", ""]
    lines += table(["method", "step s (interleaved)", "s/iter in the run (wall)", "CPU s/iter", "train s (wall)", "peak MB",
                     "divergences", "rescued runs", "diverged runs", "remedies applied"],
                    [[m, cell(s, m, "step_seconds", 1, 3), cell(s, m, "s_per_iter", 1, 3), cell(s, m, "cpu_s_per_iter", 1, 3),
                      cell(s, m, "train_seconds", 1, 0),
                      cell(s, m, "peak_memory_mb", 1, 0), cell(s, m, "divergences", 1, 1),
                      cell(s, m, "rescued", 1, 1), cell(s, m, "diverged", 1, 1), _remedies(r, m)] for m in presets])
    lines += ["", "## Claims", "", "Verdict rule: the difference of means must lie in the claimed direction by more "
              "than the claim's minimum effect and by more than 2 standard errors of the difference (seed spread); "
              "'does not hold' when even the upper 2-SE bound falls short. See docs/bench.md.", ""]
    lines += table(["claim", "statement", "source", "verdict", "per comparison"],
                    [[c["id"], c["statement"], c["source"], f"**{c['verdict']}**",
                      "; ".join(f"{row['subject']} vs {c['baseline']}: {row['verdict']}" for row in c["rows"])]
                     for c in r["claims"]])
    lines += ["", "### Numbers behind each verdict", ""]
    rows = []
    for c in r["claims"]:
        for row in c["rows"]:
            for cd in row["conditions"]:
                rows.append([c["id"], f"{row['subject']} vs {c['baseline']}", cd["condition"], _num(cd["a"]),
                             _num(cd["b"]), cd["verdict"], cd["test"]])
    lines += table(["claim", "comparison", "condition", "A", "B", "verdict", "test"], rows)
    if r.get("budgets"):
        lines += ["", *markdown_lines(r)]
    lines += ["", "## Settings", "", f"Overrides: `{' '.join(r['overrides'])}`. Profile `{r['profile']}` changes "
              "only run length and size (never the energy, sampler constants or loss):", ""]
    for preset, over in r["profile_overrides"].items():
        if over:
            lines.append(f"- **{preset}**: " + "; ".join(f"`{k}={json.dumps(v['value'])}` ({v['why']})"
                                                          for k, v in over.items()))
    lines += ["", f"Machine: {r['machine']['platform']}, torch {r['machine']['torch']}, "
                  f"{r['machine']['threads']} threads" + (f", {r['machine']['cuda']}" if r['machine']['cuda'] else ""), ""]
    return "\n".join(lines)


def _num(v) -> str:
    return "–" if v is None else f"{v:.4g}"
