"""ECE against netcal's reference implementation, the bin edges, and `hdgen calibrate` end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hdgen_cli.evaluation.calibration import expected_calibration_error, reliability_table


@pytest.mark.parametrize("classes, bins", [(3, 10), (5, 20), (10, 15)])
def test_ece_equals_netcal(classes, bins):
    from netcal.metrics import ECE

    rng = np.random.default_rng(classes)
    probs = rng.dirichlet(np.ones(classes) * 0.7, size=800)
    labels = rng.integers(0, classes, size=800)
    conf = torch.from_numpy(probs.max(1))
    correct = torch.from_numpy(probs.argmax(1) == labels)
    ours = expected_calibration_error(reliability_table(conf, correct, bins))
    assert ours == pytest.approx(float(ECE(bins=bins).measure(probs, labels)), abs=1e-9)


def test_bins_are_half_open_except_the_last():
    conf = torch.tensor([0.0, 0.05, 0.1, 0.95, 1.0])
    table = reliability_table(conf, torch.ones(5, dtype=torch.bool), bins=10)
    assert [r["count"] for r in table] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 0.1 opens bin 1; 1.0 closes bin 9
    assert table[9]["confidence"] == pytest.approx(0.975) and table[3]["accuracy"] is None
    # a perfectly calibrated toy set: in each bin accuracy equals confidence
    conf = torch.tensor([0.25] * 4 + [0.75] * 4)
    correct = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0], dtype=torch.bool)
    assert expected_calibration_error(reliability_table(conf, correct, 2)) == pytest.approx(0.0)


def test_calibrate_cli_writes_json_and_a_diagram(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "sampler.name=none",
                "objective.px_weight=0"]) == 0
    capsys.readouterr()
    assert run(["calibrate", "--ckpt", str(out), "--bins", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["table"]) == 10 and sum(r["count"] for r in result["table"]) == result["n"] == 359
    assert 0 <= result["ece"] <= 1 and result["protocol"] == "clean"
    png = Path(result["png"])  # beside the run's record of this evaluation, which holds the same result
    assert png.parent == out / "evaluations" and png.name.startswith("calibrate-") and png.stat().st_size > 1000
    record = json.loads(Path(result["record"]).read_text())
    assert record["command"] == "calibrate" and record["ece"] == result["ece"] and record["png"] == result["png"]
    assert run(["calibrate", "--ckpt", str(out), "--split", "valid"]) == 2
    assert "n_valid" in capsys.readouterr().err
