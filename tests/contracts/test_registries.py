"""Every registry, and every entry of it (timm style: a new part is tested the moment it registers)."""

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.data import make_splits
from hdgen_cli.data.registry import DATASETS
from hdgen_cli.energy.base import ENERGIES
from hdgen_cli.errors import UsageError
from hdgen_cli.models.registry import BACKBONES
from hdgen_cli.objectives import OBJECTIVES
from hdgen_cli.parts import build_run
from hdgen_cli.registry import Registry
from hdgen_cli.sampling import SAMPLERS
from hdgen_cli.sampling.init import INITS
from hdgen_cli.train import train_step

REGISTRIES = [BACKBONES, ENERGIES, INITS, DATASETS, SAMPLERS, OBJECTIVES]
ENTRIES = [(r, name) for r in REGISTRIES for name in r.names()]
# A preset that uses each sampler and each objective, on digits at a size that steps in a second.
DIGITS = ["data.name=digits", "model.name=small_cnn", "model.width=1", "sampler.steps=2", "sampler.buffer.size=100",
          "optim.warmup_iters=0"]
SAMPLER_PRESETS = {"none": "softmax", "sgld": "jem", "pyld": "jempp-m5", "gmmc": "gmmc-gen"}
OBJECTIVE_PRESETS = {"jem": ("jem", DIGITS), "gmmc": ("gmmc-gen", DIGITS + ["objective.gmmc.start_epoch=0"]),
                     "clel": ("clel-small", ["data.name=digits", "model.channels=8", "objective.clel.encoder_width=8",
                                             "sampler.steps=2", "sampler.buffer.size=100", "optim.warmup_iters=0"])}


@pytest.mark.parametrize("registry, name", ENTRIES, ids=[f"{r.what}-{n}" for r, n in ENTRIES])
def test_every_entry_is_found_and_a_near_miss_is_one_line_naming_the_key(registry, name):
    assert registry.get(name) is not None and name in registry
    with pytest.raises(UsageError) as err:
        registry.get(name + "x")
    message = str(err.value)
    assert registry.key in message and f"'{name}'" in message and "\n" not in message  # did you mean 'name'?


def test_a_name_cannot_be_registered_twice_with_another_builder():
    reg = Registry("thing", "thing.name")
    first = reg.register("a", lambda: 1)
    assert reg.register("a", first) is first  # the same builder again is harmless (a module imported twice)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: 2)


def test_every_sampler_and_objective_has_a_preset_here():
    assert set(SAMPLER_PRESETS) == set(SAMPLERS.names())
    assert set(OBJECTIVE_PRESETS) == set(OBJECTIVES.names())


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_builds_from_its_preset_and_moves_chains_within_its_bounds(name):
    cfg = load_config(SAMPLER_PRESETS[name], DIGITS)
    assert cfg.sampler.name == name
    torch.manual_seed(0)
    run = build_run(cfg, torch.device("cpu"), make_splits(cfg.data).train)
    if name == "none":
        assert run.sampler is None and run.buffer is None
        return
    x, _ = run.buffer.draw(8)
    moved = run.sampler.run(run.model, x, torch.arange(8) % run.info.num_classes)
    assert moved.shape == x.shape and torch.isfinite(moved).all() and not torch.equal(moved, x)
    assert run.sampler.bounds == (run.info.bounds if cfg.sampler.x_clamp else None)
    if run.sampler.bounds is not None:  # JEM's official SGLD does not clamp; the others do
        assert moved.min() >= run.sampler.bounds[0] and moved.max() <= run.sampler.bounds[1]


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_builds_from_its_preset_and_takes_a_finite_step(name):
    preset, overrides = OBJECTIVE_PRESETS[name]
    cfg = load_config(preset, overrides)
    assert cfg.objective.name == name
    torch.manual_seed(0)
    data = make_splits(cfg.data).train
    run = build_run(cfg, torch.device("cpu"), data)
    run.objective.epoch, run.objective.iteration, run.objective.total_iters = 1.0, 1, 10
    x, y = data.images[:16].float() / 127.5 - 1, data.labels[:16]
    if cfg.data.pixel_range == "unit":
        x = (x + 1) / 2
    before = [p.detach().clone() for p in run.model.parameters()]
    out = train_step(run.model.train(), run.objective, run.optimizer, x, y, x)
    assert torch.isfinite(out.loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, run.model.parameters()))  # the step moved the weights
