"""`hdgen bench --at`: budgets parsed and validated, one schedule with kept checkpoints, every
metric and claim per budget, and the per-claim figures in the report (a 2-preset, 2-budget smoke)."""

import json

import pytest

from hdgen_cli.bench import BenchSpec, run_bench
from hdgen_cli.bench.budgets import budget_overrides, parse_at
from hdgen_cli.bench.claims import CLAIMS
from hdgen_cli.cli.app import run
from hdgen_cli.errors import UsageError
from tests.bench.test_grid import TINY_PROTOCOL, TINY_RUN


def test_parse_at_sorts_and_refuses_nonsense():
    assert parse_at("3000, 1000,10000,1000") == [1000, 3000, 10000]
    assert parse_at(None) == [] and parse_at("") == []
    for bad in ("1k,2k", "0,100", "-5"):
        with pytest.raises(UsageError, match="--at"):
            parse_at(bad)


def test_the_schedule_is_the_largest_budget():
    assert budget_overrides([1000, 3000, 10000]) == ["train.max_iters=10000", "train.keep_iters=[1000,3000]"]
    assert budget_overrides([500]) == ["train.max_iters=500", "train.keep_iters=[]"]


def test_bad_at_is_one_line_before_training(tmp_path, capsys):
    assert run(["bench", "--presets", "softmax", "--at", "1k", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--at" in err[0] and not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def budget_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("budgets") / "grid"
    spec = BenchSpec(presets=["softmax", "jem"], seeds=1, profile="small", overrides=["data.name=digits", *TINY_RUN],
                     out=out, features="reference", protocol=TINY_PROTOCOL, device="cpu",
                     reference_overrides=["train.max_iters=6"], at=[3, 8])
    return out, run_bench(spec, quiet=True)


def test_every_metric_and_claim_has_a_value_per_budget(budget_bench):
    out, results = budget_bench
    assert results["budgets"] == [3, 8] and "one schedule of 8 iterations" in results["schedule"]
    for preset in ("softmax", "jem"):
        run_dir = out / f"{preset}-s1"
        assert (run_dir / "iter-0000003.safetensors").is_file()
        result = json.loads((run_dir / "result.json").read_text())
        assert result["train"]["iterations"] == 8
        early, final = result["budgets"]["3"], result["budgets"]["8"]
        assert final == result["metrics"] and set(early) == set(final)
        assert early["accuracy"] != final["accuracy"] or early["nll"] != final["nll"]  # two different checkpoints
    saved = json.loads((out / "results.json").read_text())
    for budget in ("3", "8"):
        claims = {c["id"]: c["verdict"] for c in saved["by_budget"][budget]["claims"]}
        assert set(claims) == {c.id for c in CLAIMS}
        assert claims["jem-family-ece"] != "not run"  # jem and softmax are in the grid at both budgets
        assert saved["by_budget"][budget]["summary"]["jem"]["ece_ts"]["n"] == 1


def test_results_and_report_show_the_budget_axis(budget_bench):
    out, results = budget_bench
    text = (out / "results.md").read_text()
    assert "## Claims by training budget" in text and "| claim | 3 it | 8 it |" in text
    assert "## Metrics by training budget" in text
    page = (out / "report.html").read_text()
    assert 'id="budgets"' in page and page.count("data:image/png;base64") >= 3
    assert "jem-family-ece: the JEM family is better calibrated" in page


def test_a_run_given_up_before_a_budget_counts_as_diverged_there(tmp_path):
    """The guard gave up at iteration 861 of a 10 000 schedule: the last good checkpoint (859) is
    no result at 1000 or 10 000; the run is diverged there and its divergences count."""
    from hdgen_cli.bench.budgets import budget_values

    run_dir = tmp_path / "jem-s1"
    run_dir.mkdir()
    metrics = {"accuracy": 0.37, "ece": 0.2}
    (run_dir / "result.json").write_text(json.dumps({
        "preset": "jem", "seed": 1, "metrics": metrics, "budgets": {"500": metrics, "1000": {}, "10000": metrics},
        "train": {"status": "diverged", "checkpoint_iteration": 859}}))
    (run_dir / "metrics.jsonl").write_text(
        '{"kind": "event", "divergence": "x", "iter": 900}\n{"kind": "event", "gave_up": true, "iter": 861}\n{"cut')
    runs = [("jem", 1, None)]
    early, late = budget_values(tmp_path, runs, 500, {}), budget_values(tmp_path, runs, 10000, {})
    assert early["jem"]["accuracy"] == [0.37] and early["jem"]["diverged"] == [0.0] and early["jem"]["divergences"] == [0.0]
    assert "accuracy" not in late["jem"] and late["jem"]["diverged"] == [1.0] and late["jem"]["divergences"] == [2.0]
