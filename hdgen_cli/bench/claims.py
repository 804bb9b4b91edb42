"""The papers' claims, as comparisons `hdgen bench` can check (verdict logic in `bench.verdict`).

Each claim names its source, the subjects (A) and the baseline (B), and one or more conditions on
bench metrics. A claim with several subjects is checked per subject; it holds when every subject
holds. Minimum effects: 0.5 point of accuracy or ECE, 0.01 AUROC, 1 point of robust accuracy, 10 %
of time, 5 % of FID.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdgen_cli.bench.verdict import MISSING, combine, compare, mean_std

JEM_FAMILY = ("jem", "jempp-m5", "jempp-m10", "sada-jem-k5")


@dataclass(frozen=True)
class Condition:
    metric: str
    direction: str                  # see bench.verdict.DIRECTIONS
    tol: float = 0.0
    relative: bool = False
    baseline_metric: str | None = None  # B's metric when it differs from A's (e.g. max p(y|x) vs log p(x))

    def describe(self) -> str:
        b = self.baseline_metric or self.metric
        tol = f"{self.tol:.0%}" if self.relative else f"{self.tol:g}"
        return f"{self.metric} {self.direction} than {b} (tol {tol})" if self.direction != "stable" else \
            "divergences: A none, B some"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    source: str
    subjects: tuple[str, ...]
    baseline: str
    conditions: tuple[Condition, ...] = field(default_factory=tuple)


ACC, ECE, FID = Condition("accuracy", "at_least", 0.005), Condition("ece", "lower", 0.005), Condition("fid.fresh", "lower", 0.05, True)
OOD_VS_MAXPROB = Condition("auroc.logpx.mean", "higher", 0.01, baseline_metric="auroc.maxprob.mean")

CLAIMS: tuple[Claim, ...] = (
    # -- the list the bench was asked for
    Claim("jem-family-ece", "the JEM family is better calibrated (lower ECE) than a softmax classifier",
          "[JEM] Fig. 5; [SADA] Sec. 4.2 (ECE 2.04 % SADA, 4.2 % JEM, 5.5 % softmax)", JEM_FAMILY, "softmax", (ECE,)),
    Claim("ebm-ood", "an EBM's log p(x) detects OOD inputs better than softmax's max p(y|x) (mean AUROC over the OOD sets)",
          "[HDGE] Table 1; [GMMC] Table 3; [SADA] Table 3", ("jem", "jempp-m10", "sada-jem-k5", "gmmc-gen", "hdge",
                                                             "clel-small"), "softmax", (OOD_VS_MAXPROB,)),
    Claim("ebm-pgd", "the EBMs have higher PGD-40 robust accuracy than softmax at a moderate eps (8/255)",
          "[JEM] Sec. 5.4; [GMMC] Table 5; [SADA] Fig. 5; [HDGE] Fig. 4",
          ("jem", "jempp-m10", "sada-jem-k5", "gmmc-gen", "hdge"), "softmax", (Condition("pgd.8", "higher", 0.01),)),
    Claim("jempp-cost", "a JEM++ PYLD-5 iteration costs less than a JEM SGLD-20 one, with accuracy within a point",
          "[JEM++] Tables 2 and 4", ("jempp-m5",), "jem",
          (Condition("step_seconds", "lower", 0.1, True), Condition("accuracy", "within", 0.01))),
    Claim("jempp-stable", "JEM++ and SADA-JEM train stably where JEM at the same budget does not",
          "[JEM++] Sec. 4.2 and Table 5; [SADA] Sec. 1", ("jempp-m5", "jempp-m10", "sada-jem-k5"), "jem",
          (Condition("divergences", "stable"),)),
    Claim("sada-vs-jempp", "SADA-JEM reaches accuracy >= JEM++ and a lower FID",
          "[SADA] Tables 1 and 5", ("sada-jem-k5",), "jempp-m10", (ACC, FID)),
    Claim("gmmc-ece", "GMMC (gen / joint) is better calibrated than softmax", "[GMMC] Sec. 4.2 (ECE 1.33 %)",
          ("gmmc-gen", "gmmc-joint"), "softmax", (ECE,)),
    Claim("gmmc-ood", "GMMC (gen / joint) detects OOD better than softmax's max p(y|x)", "[GMMC] Table 3",
          ("gmmc-gen", "gmmc-joint"), "softmax", (OOD_VS_MAXPROB,)),
    Claim("gmmc-fid", "GMMC (gen / joint) reaches a lower FID than JEM", "[GMMC] Table 1 (37.0 vs 38.4)",
          ("gmmc-gen", "gmmc-joint"), "jem", (FID,)),
    Claim("hdge-acc", "HDGE reaches accuracy >= softmax", "[HDGE] Table 2", ("hdge",), "softmax", (ACC,)),
    Claim("hdge-ece", "HDGE is better calibrated than softmax", "[HDGE] Fig. 2", ("hdge",), "softmax", (ECE,)),
    Claim("hdge-cost", "HDGE needs no sampler: an iteration costs about a softmax one (within 25 %)",
          "[HDGE] Sec. 3", ("hdge",), "softmax", (Condition("step_seconds", "within", 0.25, True),)),
    Claim("clel-fid", "CLEL reaches a lower FID than JEM at equal or lower training time", "[CLEL] Table 1",
          ("clel-small",), "jem", (FID, Condition("train_cost", "at_most", 0.1, True))),
    # -- further claims the papers make
    Claim("jempp-m10-acc", "JEM++ with M = 10 is more accurate than with M = 5", "[JEM++] Table 2 (93.5 vs 91.1)",
          ("jempp-m10",), "jempp-m5", (Condition("accuracy", "higher", 0.005),)),
    Claim("jempp-m-cost", "PYLD-5 iterations cost less than PYLD-10 ones", "[JEM++] Table 4 (12.5 vs 20.1 min/epoch)",
          ("jempp-m5",), "jempp-m10", (Condition("step_seconds", "lower", 0.1, True),)),
    Claim("sada-ece", "SADA-JEM is better calibrated than JEM", "[SADA] Sec. 4.2 (2.04 % vs 4.2 %)",
          ("sada-jem-k5",), "jem", (ECE,)),
    Claim("gmmc-dis-acc", "GMMC (dis) is at least as accurate as softmax", "[GMMC] Tables 1 and 2",
          ("gmmc-dis",), "softmax", (ACC,)),
    Claim("gmmc-joint-acc", "joint GMMC training reaches the accuracy of discriminative training (within a point)",
          "[GMMC] App. E, Fig. 6", ("gmmc-joint",), "gmmc-dis", (Condition("accuracy", "within", 0.01),)),
    Claim("gmmc-gen-pgd", "GMMC (gen) is more robust to PGD than GMMC (dis) and softmax at eps 8/255",
          "[GMMC] Table 5 (56.3 / 42.2 / 4.95 %)", ("gmmc-gen",), "gmmc-dis", (Condition("pgd.8", "higher", 0.01),)),
    Claim("hdge-ood-k", "HDGE's log q(x) beats JEM's log p(x) at OOD detection", "[HDGE] Tables 1 and 6",
          ("hdge",), "jem", (Condition("auroc.logpx.mean", "higher", 0.01),)),
)


def check(values: dict[str, dict[str, list[float]]], claims=CLAIMS) -> list[dict]:
    """Verdicts from `values[preset][metric]` = per-seed values. One dict per claim, with its rows."""
    out = []
    for claim in claims:
        rows = []
        for subject in claim.subjects:
            parts = []
            for cond in claim.conditions:
                a = values.get(subject, {}).get(cond.metric, [])
                b = values.get(claim.baseline, {}).get(cond.baseline_metric or cond.metric, [])
                res = compare(a, b, cond.direction, cond.tol, cond.relative)
                parts.append({"condition": cond.describe(), "verdict": res.verdict, "test": res.test,
                              "a": mean_std(a)[0] if a else None, "b": mean_std(b)[0] if b else None,
                              "n": [len(a), len(b)]})
            rows.append({"subject": subject, "verdict": combine([p["verdict"] for p in parts]), "conditions": parts})
        verdicts = [r["verdict"] for r in rows]
        present = [v for v in verdicts if v != MISSING]
        out.append({"id": claim.id, "statement": claim.statement, "source": claim.source, "baseline": claim.baseline,
                    "verdict": combine(present) if present else MISSING, "rows": rows})
    return out
