"""SADA-JEM parts: SAM / ASAM, separate augmented and clean data streams, schedules."""

import math

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, make_splits, to_model_range
from hdgen_cli.optim import SAM, build_optimizer, lr_at
from hdgen_cli.train import train


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def _grads(net):
    net.zero_grad()
    net(torch.randn(8, 4, generator=torch.Generator().manual_seed(1))).pow(2).sum().backward()


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_perturbation_has_norm_rho(adaptive):
    net = _net()
    sam = SAM(torch.optim.SGD(net.parameters(), lr=0.1), rho=0.2, adaptive=adaptive)
    _grads(net)
    before = [p.detach().clone() for p in net.parameters()]
    grads = [p.grad.clone() for p in net.parameters()]
    sam.first_step()
    e = [p.detach() - b for p, b in zip(net.parameters(), before)]
    if adaptive:  # ASAM: e = rho T^2 g / ||T g||, T = |theta|, so ||T^-1 e|| = rho
        tg = torch.cat([(b.abs() * g).flatten() for b, g in zip(before, grads)])
        expected = [0.2 * b.abs() ** 2 * g / tg.norm() for b, g in zip(before, grads)]
        for got, want in zip(e, expected):
            assert torch.allclose(got, want, atol=1e-6)
        assert math.isclose(torch.cat([(x / b.abs()).flatten() for x, b in zip(e, before)]).norm().item(), 0.2, rel_tol=1e-4)
    else:  # SAM: e = rho g / ||g|| over all parameters together
        assert math.isclose(torch.cat([x.flatten() for x in e]).norm().item(), 0.2, rel_tol=1e-5)
        g_norm = torch.cat([g.flatten() for g in grads]).norm()
        for got, g in zip(e, grads):
            assert torch.allclose(got, 0.2 * g / g_norm, atol=1e-6)


def test_sam_second_step_restores_weights_then_takes_the_base_step():
    net, ref = _net(), _net()
    sam = SAM(torch.optim.SGD(net.parameters(), lr=0.1), rho=0.05)
    _grads(net)
    sam.first_step()
    _grads(net)  # gradient at theta + e
    g_perturbed = [p.grad.clone() for p in net.parameters()]
    sam.second_step()
    for p, r, g in zip(net.parameters(), ref.parameters(), g_perturbed):
        assert torch.allclose(p, r - 0.1 * g, atol=1e-6)


def test_build_optimizer_wraps_only_when_rho_is_set():
    net = _net()
    assert isinstance(build_optimizer(load_config("sada-jem-k5").optim, net.parameters()), SAM)
    assert isinstance(build_optimizer(load_config("jempp-m10").optim, net.parameters()), torch.optim.SGD)


def test_classifier_branch_is_augmented_and_generative_branch_is_not():
    cfg = load_config("sada-jem-k5", ["data.name=digits", "data.aug_pad=2"])
    data = make_splits(cfg.data).train
    px = BatchTransform.from_config(cfg.data.px, cfg.data, data.default_flip)
    ce = BatchTransform.from_config(cfg.data.ce, cfg.data, data.default_flip)
    batch = data.images[:128]
    assert torch.equal(px(batch), to_model_range(batch, "symmetric"))  # untouched
    assert not torch.equal(ce(batch), to_model_range(batch, "symmetric"))  # randomly cropped
    assert (cfg.data.px.batch_size, cfg.data.ce.batch_size) == (64, 128)


def test_cosine_schedule_after_warmup():
    cfg = load_config("sada-jem-k5", ["optim.schedule=cosine", "optim.warmup_iters=10"]).optim
    assert math.isclose(lr_at(cfg, 5, 0, 110), 0.05)
    assert math.isclose(lr_at(cfg, 10, 0, 110), 0.1)
    assert math.isclose(lr_at(cfg, 60, 3, 110), 0.05, rel_tol=1e-9)
    assert lr_at(cfg, 110, 9, 110) < 1e-12


TINY_BN = ["data.name=digits", "model.name=small_cnn", "model.width=1", "sampler.buffer.size=100", "train.max_iters=6",
           "train.log_every=2", "optim.warmup_iters=2", "optim.lr=0.05", "output.grid_size=4"]


@pytest.mark.parametrize("preset, extra", [("sada-jem-k5", ["sampler.steps=2"]),
                                           ("jempp-m5", ["sampler.steps=2", "sampler.inner_steps=2"])])
def test_presets_train_on_digits_with_finite_energies(preset, extra, tmp_path):
    import json

    result = train(load_config(preset, TINY_BN + extra), tmp_path, quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["kind"] == "train"]
    assert rows and all(math.isfinite(r["e_data"]) and math.isfinite(r["e_samples"]) for r in rows)
    assert result.iterations == 6 and list(tmp_path.glob("gm-digits-*.safetensors"))
    from hdgen_cli import api

    images, _, details = api.sample(tmp_path, n=3, steps=1)  # fresh chains from the cached mixture
    assert images.shape == (3, 1, 8, 8) and details["init"] == "noise"
