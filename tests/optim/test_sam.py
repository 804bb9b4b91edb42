"""SAM and ASAM ([SADA] Algorithm 1): the perturbation's norm, the second step, when build_optimizer wraps."""

import math

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.optim import SAM, build_optimizer


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
