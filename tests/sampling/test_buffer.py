"""The replay buffer and the uniform p0: reinitialisation rate, distinct slots, class blocks."""

import pytest
import torch

from hdgen_cli.sampling import ReplayBuffer, build_init


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
