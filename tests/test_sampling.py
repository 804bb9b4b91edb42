import pytest
import torch

from hdgen_cli.energy import LogitEnergy
from hdgen_cli.sampling import ReplayBuffer, SGLDSampler, build_init, energy_grad, model_mode, sgld_step


class Quadratic(torch.nn.Module):
    """E(x) = 0.5 * a * ||x||^2 per sample: grad_x sum E = a * x, easy to check by hand."""

    def __init__(self, a=2.0):
        super().__init__()
        self.a = a
        self.lin = torch.nn.Linear(1, 1)  # a parameter, so model_mode has something to toggle

    def energy(self, x, y=None):
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)


def test_energy_grad_is_grad_of_batch_sum():
    m = Quadratic(a=3.0)
    x = torch.randn(4, 1, 2, 2)
    assert torch.allclose(energy_grad(m.energy, x), 3.0 * x)


def test_sgld_step_matches_hand_computed_update():
    x = torch.tensor([[0.5, -2.0, 1.0]])
    grad = torch.tensor([[0.2, -3.0, 4.0]])
    torch.manual_seed(7)
    eps = torch.randn_like(x)
    torch.manual_seed(7)
    out = sgld_step(x, grad, step_size=0.1, noise=0.01, grad_clamp=1.0, bounds=(-1.0, 1.0))
    expected = (x - 0.1 * grad.clamp(-1, 1) + 0.01 * eps).clamp(-1, 1)
    assert torch.equal(out, expected)
    # JEM form: no clamps, x <- x + a * grad LSE + s * eps with grad LSE = -grad E.
    torch.manual_seed(3)
    eps = torch.randn_like(x)
    torch.manual_seed(3)
    assert torch.allclose(sgld_step(x, grad, 1.0, 0.01), x - grad + 0.01 * eps)


def test_sgld_descends_a_quadratic_energy_and_restores_mode():
    m = Quadratic(a=1.0).train()
    sampler = SGLDSampler(steps=10, step_size=0.5, noise=0.0, mode="eval")
    x = torch.ones(3, 1, 2, 2)
    out = sampler.run(m, x)
    assert torch.allclose(out, x * 0.5**10)  # x <- x - 0.5 x per step
    assert m.training  # mode restored after sampling in eval mode


def test_jem_sampler_ascends_logsumexp():
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    backbone.num_classes = 3
    model = LogitEnergy(backbone)
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    out = SGLDSampler(steps=5, step_size=0.05, noise=0.0).run(model, x)
    assert (model.energy(out) < model.energy(x)).all()
    with model_mode(model, "train"):
        assert model.training


def _buffer(size=100, classes=10, reinit=0.05):
    init = build_init("uniform", (1, 2, 2), (-1.0, 1.0), "cpu")
    return ReplayBuffer(size, (1, 2, 2), classes, reinit, init)


def test_buffer_reinit_rate_matches_probability():
    buf = _buffer(size=1000, reinit=0.05)
    buf.images.fill_(5.0)  # outside U[-1, 1]: a restarted chain is recognisable
    restarted = 0
    for _ in range(200):
        x, _ = buf.draw(100)
        restarted += int((x.flatten(1).abs() <= 1).all(1).sum())
    rate = restarted / 20000
    assert abs(rate - 0.05) < 0.01  # binomial std is ~0.0015


def test_buffer_draws_distinct_slots_and_class_blocks():
    buf = _buffer(size=100, classes=10, reinit=0.0)
    idx = buf.draw_indices(64)
    assert len(set(idx.tolist())) == 64
    y = torch.tensor([3] * 8 + [7] * 4)
    idx = buf.draw_indices(len(y), y)
    assert ((idx // 10) == y).all() and len(set(idx.tolist())) == len(y)
    x, idx = buf.draw(5)
    buf.update(idx, torch.zeros_like(x))
    assert (buf.images[idx] == 0).all()


def test_buffer_rejects_sizes_not_divisible_by_classes():
    with pytest.raises(ValueError):
        _buffer(size=95, classes=10)


def test_uniform_init_range():
    x = build_init("uniform", (3, 4, 4), (0.0, 1.0), "cpu")(500)
    assert x.min() >= 0 and x.max() <= 1 and abs(x.mean().item() - 0.5) < 0.02
