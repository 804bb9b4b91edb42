"""The guard's remedies (docs/stability.md): each one applied only after a real runaway, recorded
in the log, the result and the checkpoint, and a resume after a rescue bit for bit."""

import json

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.config.schema import GuardConfig
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint
from hdgen_cli.train.early_sign import EarlySign
from hdgen_cli.train.guard import Remedies, base_momentum, describe, set_momentum
from tests.conftest import TINY

# Adam at lr 1 really runs away within a few steps (no injected NaN); lower_lr at x0.001 brings the
# run back, so the remedy under test is applied on a run that then finishes.
RUNAWAY = TINY + ["optim.lr=1.0", "train.log_every=2", "train.guard.snapshot_every=2", "train.guard.lr_factor=0.001"]


def test_each_roll_back_applies_every_listed_remedy_once_more():
    gc = GuardConfig(remedies=["lower_lr", "more_steps", "lower_momentum", "energy_l2", "clip_grad"],
                     lr_factor=0.5, steps_factor=2, momentum_factor=0.5, l2_weight=0.2, clip_norm=3.0)
    twice = Remedies().next(gc).next(gc)
    assert (twice.recoveries, twice.lr_scale, twice.steps_scale, twice.momentum_scale) == (2, 0.25, 4.0, 0.25)
    assert (twice.l2_weight, twice.clip_norm) == (0.2, 3.0)
    assert twice.applied == ["lower_lr", "more_steps", "lower_momentum", "energy_l2", "clip_grad"]
    assert Remedies.from_dict(twice.to_dict()) == twice  # what a checkpoint stores
    unlisted = Remedies().next(GuardConfig(remedies=[]))
    assert (unlisted.momentum_scale, unlisted.l2_weight, unlisted.clip_norm, unlisted.applied) == (1.0, 0.0, 0.0, [])


@pytest.mark.parametrize("make", [lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99))])
def test_lower_momentum_scales_sgd_momentum_and_adam_beta1_from_their_own_values(make):
    opt = make([torch.nn.Parameter(torch.zeros(2))])
    base = base_momentum(opt)
    set_momentum(opt, base, 0.5)
    set_momentum(opt, base, 0.5)  # from the base, not compounding on the live value
    group = opt.param_groups[0]
    assert (group["betas"] == (0.4, 0.99)) if "betas" in group else group["momentum"] == pytest.approx(0.45)


def _events(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "divergence" in r], [r for r in lines if r.get("kind") == "train"]


@pytest.mark.parametrize("remedy", ["lower_momentum", "energy_l2", "clip_grad"])
def test_a_remedy_acts_on_a_real_runaway_and_a_resume_after_the_rescue_is_bitwise(remedy, tmp_path):
    guard = [f"train.guard.remedies=lower_lr,{remedy}", "train.guard.clip_norm=0.5", "train.guard.momentum_factor=0.5"]
    full = train(load_config("quickstart", RUNAWAY + guard + ["train.max_iters=30"]), tmp_path / "full", quiet=True)
    assert full.recoveries >= 1 and full.iterations == 30 and remedy in full.remedies
    events, records = _events(tmp_path / "full")
    words = {"lower_momentum": "momentum x0.5", "energy_l2": "energy L2 0.1", "clip_grad": "clipped at 0.5"}[remedy]
    assert any(words in e["message"] for e in events[1:] or events) and remedy in events[-1]["applied"]
    if remedy == "energy_l2":  # the penalty is in the loss from the roll-back on (the quickstart has none)
        assert all("l2" in r for r in records if r["iter"] > events[0]["iter"])
    saved = load_checkpoint(tmp_path / "full").position["guard"]
    assert Remedies.from_dict(saved).applied == full.remedies

    # The same run stopped at 22 (its first checkpoint, after the rescue) and resumed to 30.
    part = train(load_config("quickstart", RUNAWAY + guard + ["train.max_iters=22"]), tmp_path / "part", quiet=True)
    assert part.recoveries == full.recoveries
    resumed = train(load_config("quickstart", RUNAWAY + guard + ["train.max_iters=30"]), tmp_path / "part",
                    resume=tmp_path / "part", quiet=True)
    a, b = load_checkpoint(tmp_path / "full").tensors, load_checkpoint(tmp_path / "part").tensors
    assert resumed.recoveries == full.recoveries and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("model.", "optim.", "buffer.")))


def test_a_run_that_never_diverges_is_bitwise_the_same_whatever_remedies_are_listed(tmp_path):
    every = "train.guard.remedies=lower_momentum,energy_l2,clip_grad,reset_buffer,more_steps,lower_lr"
    a = train(load_config("quickstart", TINY), tmp_path / "a", quiet=True)
    b = train(load_config("quickstart", TINY + [every]), tmp_path / "b", quiet=True)
    assert a.recoveries == b.recoveries == 0 and b.remedies == []
    ta, tb = load_checkpoint(tmp_path / "a").tensors, load_checkpoint(tmp_path / "b").tensors
    assert all(torch.equal(ta[k], tb[k]) for k in ta if not k.startswith("rng."))


def test_the_early_sign_rises_on_a_gap_above_its_running_median_and_rolls_back_with_the_run():
    sign = EarlySign(rise=1.0, window=20)
    healthy = [-0.3 + 0.1 * (-1) ** i for i in range(20)]  # median exactly -0.3
    assert all(sign.update(5 * i, g) is None for i, g in enumerate(healthy)) and not sign.raised
    assert sign.update(100, 0.6) is None and not sign.raised  # 0.9 above the median: not yet
    assert sign.update(105, 0.75) == pytest.approx(1.05) and sign.raised  # the median of -0.4, -0.2 ... and 0.6
    assert sign.update(110, 2.0) is None and sign.raised  # raised once, reported once
    again = EarlySign.from_dict(1.0, sign.to_dict())  # what a checkpoint stores
    assert again.raised and again.history == sign.history
    sign.roll_back(100)
    assert not sign.raised and [i for i, _ in sign.history][-1] == 100
    off = EarlySign(rise=0.0)
    assert all(off.update(i, 10.0 * i) is None for i in range(30)) and not off.raised
    assert EarlySign(1.0).update(0, 5.0) is None  # no baseline yet
    raised = EarlySign.from_dict(1.0, again.to_dict())
    before = list(raised.history)
    assert raised.update(120, float("nan")) is None and raised.history == before and raised.raised  # NaN: ignored
    assert not EarlySign.from_dict(0.0, again.to_dict()).raised  # a resume that turns the sign off clears it
    turned_off = EarlySign.from_dict(1.0, again.to_dict())
    turned_off.rise = 0.0
    assert turned_off.update(125, 0.0) is None and not turned_off.raised


def test_the_default_remedies_rescue_a_real_jempp_runaway_rolling_back_to_before_the_early_sign(tmp_path, monkeypatch):
    """JEM++ PYLD-5 on digits, seed 1 (the divergence suite's first run, ~20 s): the E gap rises
    after ~200 iterations; the early sign goes up first, the roll-back lands before it, and the
    default remedies carry the run to the end of its schedule."""
    from hdgen_cli.bench.profiles import load_profile

    import hdgen_cli.train.epoch_end as epoch_end

    cfg = load_profile("small").config("jempp-m5", ["data.name=digits", "train.seed=1", "train.log_every=5"])
    written, save = [], epoch_end.save_checkpoint

    def recording(path, captured, **kw):
        written.append((path.name, kw["position"]["iteration"], kw["position"]["early_sign"]["raised"]))
        return save(path, captured, **kw)

    monkeypatch.setattr(epoch_end, "save_checkpoint", recording)
    result = train(cfg, tmp_path, quiet=True)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    signs = [r for r in lines if "early_sign" in r]
    rolls = [r for r in lines if "divergence" in r]
    assert result.epochs == cfg.train.epochs and 1 <= result.recoveries <= 3  # the whole schedule
    assert result.remedies == ["lower_momentum", "energy_l2"] and result.test_accuracy > 0.9
    assert signs and signs[0]["iter"] < rolls[0]["iter"] and rolls[0]["rolled_back_to"] < signs[0]["iter"]
    assert load_checkpoint(tmp_path).position["early_sign"]["history"]  # saved for an exact resume
    # No last.safetensors is written while the sign is up (a resume from it would roll back elsewhere);
    # the sign may drop and rise again between two log lines, so each write is checked on its own.
    assert written and not [i for name, i, raised in written if name == "last.safetensors" and raised
                            and i < result.iterations]


def test_a_roll_back_event_says_when_energy_l2_has_no_term_to_weight():
    gc = GuardConfig(remedies=["lower_momentum", "energy_l2"])
    remedies = Remedies().next(gc)
    assert describe(gc, remedies, None, None) == ", momentum x0.5, energy L2 0.1"
    assert "energy L2: none in this objective, not applied" in describe(gc, remedies, None, None, energy_penalty=False)
    assert Remedies().next(gc, energy_penalty=False).applied == ["lower_momentum"]  # reports do not claim it
