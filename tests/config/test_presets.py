import json

import pytest

from hdgen_cli.config import list_presets, load_config, override_config, read_preset, valid_keys
from hdgen_cli.config.presets import parse_value
from hdgen_cli.errors import UsageError


def test_presets_of_this_release_exist_and_validate():
    names = list_presets()
    assert {"softmax", "jem", "quickstart"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name and cfg.description


def test_extends_merges_child_over_parent():
    raw = read_preset("quickstart")
    cfg = load_config("quickstart")
    jem = load_config("jem")
    assert "extends" not in raw
    assert cfg.data.name == "digits" and cfg.model.name == "small_cnn"
    assert cfg.sampler.steps == jem.sampler.steps == 20  # inherited from jem
    assert cfg.objective == jem.objective


def test_overrides_apply_and_parse_types():
    cfg = load_config("jem", ["sampler.steps=40", "optim.lr=1e-4", "optim.decay_epochs=[1,2]", "sampler.grad_clamp=none",
                              "data.px.augment=false"])
    assert cfg.sampler.steps == 40 and cfg.optim.lr == 1e-4 and cfg.optim.decay_epochs == [1, 2]
    assert cfg.sampler.grad_clamp is None and cfg.data.px.augment is False
    assert parse_value("3") == 3 and parse_value("true") is True and parse_value("cifar10") == "cifar10"


@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=1", "did you mean 'optim.lr'"),
    ("sampler.step=3", "did you mean 'sampler.steps'"),
    ("nonsense", "not key=value"),
])
def test_unknown_keys_suggest_the_closest(override, fragment):
    with pytest.raises(UsageError) as exc:
        load_config("jem", [override])
    assert fragment in str(exc.value) and exc.value.exit_code == 2 and "\n" not in str(exc.value)


@pytest.mark.parametrize("override", ["sampler.steps=-3", "sampler.steps=0", "optim.lr=nan", "optim.lr=-1",
                                      "sampler.buffer.reinit=2", "model.norm=layer", "optim.betas=[1.5,0.9]",
                                      "data.px.batch_size=abc", "objective.ce_weight=0"])
def test_invalid_values_are_usage_errors(override):
    cfg_override = [override, "objective.px_weight=0"] if override.startswith("objective.ce") else [override]
    with pytest.raises(UsageError) as exc:
        load_config("jem", cfg_override)
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value)


def test_unknown_preset_suggests():
    with pytest.raises(UsageError, match="did you mean 'jem'"):
        load_config("jemm")


def test_px_term_needs_a_sampler():
    with pytest.raises(UsageError, match="needs a sampler"):
        load_config("jem", ["sampler.name=none"])


def test_config_round_trips_through_json():
    cfg = load_config("jem", ["sampler.steps=7"])
    again = override_config(cfg.model_validate(json.loads(cfg.model_dump_json())), [])
    assert again == cfg
    assert "sampler.buffer.reinit" in valid_keys()


def test_energy_l2_plateau_gap_is_px_weight_over_l2_weight():
    # the closed form behind the guard's gap_limit check: E_d - E_s + w (E_d^2 + E_s^2) is least at gap 1/w
    import torch

    from hdgen_cli.objectives.terms import energy_l2
    e = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([e], lr=0.1)
    for _ in range(2000):
        opt.zero_grad()
        (e[0] - e[1] + 0.1 * energy_l2(e[:1], e[1:])).backward()
        opt.step()
    assert float((e[1] - e[0]).detach()) == pytest.approx(10.0, rel=1e-4)


def test_gap_limit_below_the_energy_l2_plateau_is_refused_before_training(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "jempp-m5", "data.name=digits", "train.guard.gap_limit=10", "--out", str(out), "--quiet",
                *TINY]) == 2
    err = capsys.readouterr().err
    assert "gap_limit to at least 20" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    # a config (or a checkpoint written with it) still loads; stop or no energy_l2 is accepted
    assert load_config("jempp-m5", ["train.guard.gap_limit=10"]).train.guard.gap_limit == 10
    from hdgen_cli.train.guard import check_gap_limit
    check_gap_limit(load_config("jempp-m5", ["train.guard.gap_limit=20"]))
    check_gap_limit(load_config("jempp-m5", ["train.guard.gap_limit=10", "train.guard.remedies=lower_momentum"]))
    check_gap_limit(load_config("jempp-m5", ["train.guard.gap_limit=10", "train.guard.on_divergence=stop"]))
