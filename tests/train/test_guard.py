"""Divergence guard: detection on the device, roll-back to the last good state, remedies,
exit code 3 when recovery does not hold."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from hdgen_cli.cli.app import run
from hdgen_cli.config.schema import GuardConfig
from hdgen_cli.objectives.base import StepOutput
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint
from hdgen_cli.train.guard import DivergenceGuard
from hdgen_cli.train.state import TrainingState
from tests.conftest import TINY


def _out(loss, e_data=None, e_samples=None):
    stats = {} if e_data is None else {"e_data": torch.tensor(e_data), "e_samples": torch.tensor(e_samples)}
    return StepOutput(loss=torch.tensor(loss), stats=stats)


def test_the_guard_flags_what_crosses_a_limit_and_names_the_first_bad_iteration():
    guard = DivergenceGuard(GuardConfig(loss_limit=100, energy_limit=50, gap_limit=10))
    guard.observe(_out(1.0, -3.0, -1.0), 1)
    guard.observe(_out(2.0, -3.0, 4.0), 2)
    assert guard.verdict() is None  # a gap of 7 is under 10
    assert guard.verdict() is None  # an empty window is fine too
    guard.observe(_out(1.0, -3.0, 9.0), 3)  # gap 12
    guard.observe(_out(float("nan"), -3.0, 60.0), 4)
    guard.observe(_out(1.0), 5)  # no energies (a softmax step)
    problem = guard.verdict()
    assert problem.startswith("iteration 3:")
    assert "|loss| non-finite" in problem and "|E(samples)| 60 > 5e+01" in problem and "|E gap| 63" in problem
    assert "|E(data)|" not in problem
    assert guard.verdict() is None  # the window is cleared once read


@pytest.mark.parametrize("value", [1e9, float("inf"), float("-inf")])
def test_the_guard_flags_a_huge_or_infinite_loss(value):
    guard = DivergenceGuard(GuardConfig())
    guard.observe(_out(value), 7)
    assert guard.verdict().startswith("iteration 7: |loss|")


def test_a_capture_restores_exactly_and_survives_being_restored_twice(tiny_config):
    from hdgen_cli.optim import build_optimizer
    from hdgen_cli.parts import DataInfo, build_model

    cfg = tiny_config()
    model = build_model(cfg, DataInfo(1, 8, 10, "symmetric"))
    opt = build_optimizer(cfg.optim, model.parameters())
    state = TrainingState(model, opt)

    def step():
        opt.zero_grad()
        model.scores(torch.randn(4, 1, 8, 8)).logsumexp(1).sum().backward()
        opt.step()

    step()
    good = state.capture(1)
    snapshot = {k: v.clone() for k, v in good.tensors.items()}
    draws = []
    for _ in range(2):
        step()
        step()
        state.restore(good, "test")
        draws.append(torch.rand(3))  # the RNG goes back too
        assert all(torch.equal(v, state.capture(1).tensors[k]) for k, v in snapshot.items()
                   if not k.startswith("rng"))
    assert torch.equal(*draws)
    assert all(torch.equal(v, good.tensors[k]) for k, v in snapshot.items())  # restoring never wrote into it


def test_stop_mode_exits_3_with_a_snapshot(tmp_path, capsys):
    argv = ["train", "-p", "quickstart", "--out", str(tmp_path), "--quiet", *TINY, "train.guard.loss_limit=1e-6",
            "train.log_every=1", "--on-divergence", "stop"]
    assert run(argv) == 3
    err = capsys.readouterr().err.strip()
    assert "diverged at iteration 1: |loss|" in err and "recovery is off (train.guard.on_divergence=stop)" in err
    assert "start again" in err  # no checkpoint exists yet to resume from
    snap = load_file(str(tmp_path / "diverged.safetensors"))
    assert snap["samples"].shape[1:] == (1, 8, 8) and snap["loss_history"].numel() == 0
    assert (tmp_path / "metrics.jsonl").is_file()  # a run that diverged keeps its directory


def _events(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "divergence" in r], [r for r in lines if r.get("kind") == "train"]


def test_a_forced_divergence_is_rolled_back_and_the_run_finishes(tmp_path):
    """lr = 1 blows JEM up within a few steps; the lower_lr remedy (x 0.001) brings it back to 1e-3."""
    overrides = TINY + ["optim.lr=1.0", "train.max_iters=30", "train.log_every=2", "train.guard.remedies=lower_lr",
                        "train.guard.lr_factor=0.001", "train.guard.snapshot_every=2"]
    from hdgen_cli.config import load_config

    result = train(load_config("quickstart", overrides), tmp_path, quiet=True)
    assert result.recoveries >= 1 and result.iterations == 30
    assert result.test_accuracy is not None and math.isfinite(result.test_nll)
    events, records = _events(tmp_path)
    first = events[0]
    assert first["rolled_back_to"] < int(first["divergence"].split(":")[0].split()[1]) and first["recoveries"] == 1
    assert all(math.isfinite(r["e_data"]) and math.isfinite(r["e_samples"]) for r in records[-3:])
    assert records[-1]["lr"] == pytest.approx(1e-3 ** result.recoveries * 1.0)
    guard = load_checkpoint(tmp_path).position["guard"]  # a resume keeps the remedies
    assert guard["recoveries"] == result.recoveries and guard["lr_scale"] == pytest.approx(1e-3 ** result.recoveries)


def test_divergence_that_remedies_cannot_fix_exits_3_from_the_cli(tmp_path, capsys):
    argv = ["train", "-p", "quickstart", "--out", str(tmp_path / "r"), "--quiet", *TINY, "optim.lr=1.0",
            "train.log_every=2", "train.guard.remedies=[]", "train.guard.recoveries=1"]
    assert run(argv) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "1 roll-back(s) to iteration 0 did not hold" in err and "diverged.safetensors" in err
    events, _ = _events(tmp_path / "r")
    assert len(events) == 1 and "same settings, fresh noise" in events[0]["message"]
