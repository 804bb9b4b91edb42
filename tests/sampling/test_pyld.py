"""PYLD-M-N ([JEM++] Algorithm 1, eq. 13): proximal SGLD, the first-layer co-state, the linear-stem shortcut, cost."""

import pytest
import torch

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.energy import LogitEnergy
from hdgen_cli.models import build_backbone
from hdgen_cli.sampling import PYLDSampler, SGLDSampler, energy_grad
from hdgen_cli.sampling.pyld import first_layer_costate, first_layer_vjp


def _model(norm="none", name="small_cnn"):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, width=1, depth=10, norm=norm)
    return LogitEnergy(build_backbone(cfg, 1, 10, 8))


def test_proximal_step_clamps_gradient_then_x_then_adds_noise():
    model = _model()
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    g = energy_grad(model.energy, x)
    torch.manual_seed(5)
    out = SGLDSampler(1, 0.2, 0.01, grad_clamp=1e-3, bounds=(-1.0, 1.0), noise_after_clamp=True).run(model, x)
    torch.manual_seed(5)
    eps = torch.randn_like(x)
    assert torch.allclose(out, (x - 0.2 * g.clamp(-1e-3, 1e-3)).clamp(-1, 1) + 0.01 * eps, atol=1e-6)


def test_costate_times_first_layer_jacobian_is_the_input_gradient():
    model = _model()
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    p = first_layer_costate(model, model.backbone.first_layer, x, None)
    g = first_layer_vjp(model.backbone.first_layer, x, p)
    assert torch.allclose(g, energy_grad(model.energy, x), atol=1e-6)  # eq. 12-13: linear first layer


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_pyld_with_one_inner_step_equals_proximal_sgld(norm):
    model = _model(norm)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    kw = dict(step_size=0.2, noise=0.01, grad_clamp=1.0, bounds=(-1.0, 1.0), mode="train", freeze_bn_stats=True)
    torch.manual_seed(1)
    a = PYLDSampler(steps=4, inner_steps=1, **kw).run(model, x)
    torch.manual_seed(1)
    b = SGLDSampler(steps=4, noise_after_clamp=True, **kw).run(model, x)
    assert torch.allclose(a, b, atol=1e-5)


def test_pyld_inner_steps_move_further_with_one_gradient():
    model = _model()
    x = torch.zeros(4, 1, 8, 8)
    g = energy_grad(model.energy, x).clamp(-1, 1)
    out = PYLDSampler(steps=1, inner_steps=3, step_size=0.01, noise=0.0, grad_clamp=1.0, bounds=(-1.0, 1.0)).run(model, x)
    # Same first-layer co-state for all N sub-steps: N steps of eta along the one clamped gradient.
    assert torch.allclose(out, (x - 0.03 * g).clamp(-1, 1), atol=1e-6)


@pytest.mark.parametrize("name, norm", [("small_cnn", "none"), ("wrn", "batch")])
def test_pyld_linear_stem_shortcut_is_the_general_path_bit_for_bit(name, norm, monkeypatch):
    """W^T p computed once per outer step (a linear stem) against N recomputations: identical,
    with N - 1 fewer first-layer passes per outer step."""
    from hdgen_cli.sampling import pyld
    from hdgen_cli.sampling.pyld import linear_stem

    calls = []
    real_vjp = pyld.first_layer_vjp

    def counted(*args):
        calls.append(1)
        return real_vjp(*args)

    monkeypatch.setattr(pyld, "first_layer_vjp", counted)  # a hook on the stem would make it "not plain"

    model = _model(norm, name)
    assert linear_stem(model.backbone.first_layer)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    kw = dict(steps=3, inner_steps=5, step_size=0.05, noise=0.01, grad_clamp=0.02, bounds=(-1.0, 1.0), mode="train",
              freeze_bn_stats=True)
    out, stem_passes = {}, {}
    for shortcut in (True, False):
        calls.clear()
        torch.manual_seed(1)
        out[shortcut] = PYLDSampler(**kw, shortcut=shortcut).run(model, x)
        stem_passes[shortcut] = len(calls)
    assert torch.equal(out[True], out[False])
    assert stem_passes[False] - stem_passes[True] == 3 * (5 - 1)


def test_a_parametrized_stem_is_not_linear_in_x_for_the_shortcut():
    from torch.nn.utils.parametrizations import spectral_norm

    from hdgen_cli.sampling.pyld import linear_stem

    assert linear_stem(torch.nn.Conv2d(1, 4, 3)) and linear_stem(torch.nn.Linear(4, 2))
    assert not linear_stem(spectral_norm(torch.nn.Conv2d(1, 4, 3)))  # its weight changes on every call
    assert not linear_stem(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()))


def test_pyld_cost_scales_with_outer_steps_only():
    model = _model()
    calls = []
    handle = model.backbone.register_forward_hook(lambda *a: calls.append(1))  # full network passes
    PYLDSampler(steps=3, inner_steps=7, step_size=0.1, noise=0.0, grad_clamp=1.0, bounds=None).run(model, torch.rand(2, 1, 8, 8))
    handle.remove()
    assert len(calls) == 3
