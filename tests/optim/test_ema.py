"""EMA: the decay follows the half-life formula, copies early, averages later, copies buffers."""

import math

import torch
from torch import nn

from hdgen_cli.optim.ema import EMA, ema_decay


def test_decay_follows_the_half_life_formula():
    assert math.isclose(ema_decay(64, 20000), 0.997784, abs_tol=1e-6)
    # after half_life images an old weight's share has halved, whatever the batch size
    for batch in (16, 64, 256):
        assert math.isclose(ema_decay(batch, 20000) ** (20000 / batch), 0.5, rel_tol=1e-9)


def test_average_copies_first_then_moves_by_the_decay():
    online = nn.Linear(3, 2)
    online.register_buffer("count", torch.zeros(()))
    ema = EMA(online, batch_size=64, half_life=64 * 3, copy_iters=2)
    d = 0.5 ** (1 / 3)
    with torch.no_grad():
        online.weight.fill_(1.0)
        online.count.fill_(7)
    ema.update(online, 1)  # still copying
    assert torch.equal(ema.model.weight, online.weight) and float(ema.model.count) == 7
    with torch.no_grad():
        online.weight.fill_(3.0)
    ema.update(online, 3)  # past copy_iters: w = d * 1 + (1 - d) * 3
    assert torch.allclose(ema.model.weight, torch.full_like(online.weight, d + (1 - d) * 3))
    assert not any(p.requires_grad for p in ema.model.parameters())
