"""ECE against netcal's reference implementation, the bin edges, and `hdgen calibrate` end to end."""

import json
import math
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


def _toy_logits(seed, n=1200, classes=10, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=gen)
    logits = torch.randn(n, classes, generator=gen, dtype=torch.float64) * scale
    logits[torch.arange(n), labels] += 2.5
    return logits, labels


@pytest.mark.parametrize("seed, scale", [(0, 3.0), (1, 1.5), (6, 2.0)])
def test_temperature_scaled_ece_equals_netcal(seed, scale):
    """netcal's TemperatureScaling fits the inverse temperature by NLL; the scaled ECE must agree."""
    from netcal.metrics import ECE
    from netcal.scaling import TemperatureScaling

    from hdgen_cli.evaluation.calibration import ece_of
    from hdgen_cli.evaluation.temperature import fit_temperature

    logits, labels = _toy_logits(seed, scale=scale)
    fit, held = slice(0, 600), slice(600, None)
    temperature = fit_temperature(logits[fit], labels[fit])
    reference = TemperatureScaling()
    reference.fit(logits[fit].softmax(1).numpy(), labels[fit].numpy())
    assert 1 / temperature == pytest.approx(float(reference.temperature[0]), rel=1e-4)
    theirs = float(ECE(bins=15).measure(reference.transform(logits[held].softmax(1).numpy()), labels[held].numpy()))
    assert ece_of(logits[held] / temperature, labels[held], 15) == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize("seed, scale", [(0, 3.0), (2, 8.0), (5, 1.0)])
def test_temperature_equals_scipy_minimiser(seed, scale):
    """Against scipy's bounded scalar minimiser, also where netcal's fit stops short (logits of
    scale 8 give probabilities near 1e-30, whose logs netcal's optimiser does not resolve)."""
    from scipy.optimize import minimize_scalar

    from hdgen_cli.evaluation.temperature import fit_temperature, nll

    logits, labels = _toy_logits(seed, scale=scale)
    best = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t)), bounds=(-6.9, 6.9), method="bounded",
                           options={"xatol": 1e-12})
    assert fit_temperature(logits, labels) == pytest.approx(math.exp(best.x), rel=1e-6)


def test_temperature_minimises_nll_and_reads_the_scale():
    from hdgen_cli.evaluation.temperature import confidence_summary, fit_temperature, nll

    logits, labels = _toy_logits(3)
    t = fit_temperature(logits, labels)
    assert nll(logits, labels, t) < min(nll(logits, labels, t * 0.99), nll(logits, labels, t * 1.01))
    # logits scaled by 1/5 are the same model, five times less confident: T follows by the same factor
    assert fit_temperature(logits / 5, labels) == pytest.approx(t / 5, rel=1e-6)
    summary = confidence_summary(logits / 5, labels)
    assert summary["confidence_direction"] == "underconfident" and summary["confidence_gap"] < 0
    assert summary["mean_top2_margin"] == pytest.approx(float((logits.topk(2).values @ torch.tensor([1.0, -1.0],
                                                        dtype=torch.float64)).mean()) / 5)
    assert summary["mean_lse"] == pytest.approx(float(torch.logsumexp(logits / 5, 1).mean()))


def test_calibrate_cli_fits_the_temperature_on_the_validation_split(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "sampler.name=none",
                "objective.px_weight=0", "data.n_valid=200"]) == 0
    capsys.readouterr()
    assert run(["calibrate", "--ckpt", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["temperature_fit_on"] == "valid" and result["temperature_fit_n"] == 200
    assert result["temperature"] > 0 and 0 <= result["ece_temperature_scaled"] <= 1
    assert result["nll_temperature_scaled"] <= result["nll"] + 0.05  # T is fitted on other images
    gap = result["mean_confidence"] - result["accuracy"]
    assert result["confidence_gap"] == pytest.approx(gap)
    assert run(["calibrate", "--ckpt", str(out), "--split", "valid"]) == 0
    text = capsys.readouterr().out
    assert "seeded half of the valid split (100 images" in text and "ece_temperature_scaled" in text


def test_a_separable_fitting_set_puts_the_temperature_at_its_bound():
    from hdgen_cli.evaluation.temperature import at_bound, confidence_summary, fit_temperature

    logits = torch.eye(10, dtype=torch.float64).repeat(5, 1) * 4  # every image right, margins equal
    labels = torch.arange(10).repeat(5)
    t = fit_temperature(logits, labels)
    assert at_bound(t) and t < 0.0011 and not at_bound(1.0)
    calibrated = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64)).repeat(2, 1)
    assert confidence_summary(calibrated, torch.tensor([0, 1]))["confidence_direction"] == "calibrated"
