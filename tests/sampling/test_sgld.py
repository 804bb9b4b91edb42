"""SGLD: the update by hand, descent on a quadratic, the sampling mode and BatchNorm statistics."""

import torch

from hdgen_cli.energy import LogitEnergy
from hdgen_cli.models.norm import frozen_running_stats
from hdgen_cli.sampling import SGLDSampler, energy_grad, model_mode, sgld_step
from tests.sampling.test_pyld import _model


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


def test_sampling_in_train_mode_can_leave_running_stats_alone():
    model = _model("batch")
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    before = bn.running_mean.clone()
    SGLDSampler(2, 0.1, 0.0, mode="train", freeze_bn_stats=True).run(model.eval(), torch.rand(8, 1, 8, 8))
    assert torch.equal(bn.running_mean, before) and not model.training
    SGLDSampler(2, 0.1, 0.0, mode="train").run(model, torch.rand(8, 1, 8, 8))
    assert not torch.equal(bn.running_mean, before)  # the official JEM++ behaviour updates them
    with frozen_running_stats(model):
        model.train()(torch.rand(4, 1, 8, 8))
    assert bn.momentum == 0.1
