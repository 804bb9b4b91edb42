"""Class samples by JEM's conditional protocol (`generate_class`) and the `--conditional` choice."""

import json

import pytest
import torch
from torch import nn

from hdgen_cli.errors import HdgenError
from hdgen_cli.sampling import generate_class


class FirstPixelClassifier(nn.Module):
    """Class k when the first pixel lies in [k/10, (k+1)/10): which chains are kept is known exactly."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def scores(self, x):
        return nn.functional.one_hot((x.flatten(1)[:, 0] * 10).long().clamp(0, 9), 10).float()


class StillSampler:
    """A kernel that leaves the chains where they are and records what it was asked."""

    def __init__(self):
        self.calls = []

    def run(self, model, x, y=None, steps=None, on_step=None):
        self.calls.append((len(x), y, steps))
        return x


def uniform(n, labels=None):
    return torch.rand(n, 1, 2, 2)


def test_keeps_only_chains_the_model_puts_in_the_class():
    sampler = StillSampler()
    images, stats = generate_class(FirstPixelClassifier(), sampler, 20, 7, uniform, 3, batch_size=16)
    assert len(images) == 20 and stats["kept"] == 20
    assert ((images.flatten(1)[:, 0] >= 0.3) & (images.flatten(1)[:, 0] < 0.4)).all()
    assert all(y is None and steps == 7 for _, y, steps in sampler.calls)  # the unconditional kernel
    assert stats["chains"] == 16 * len(sampler.calls) and 0.03 < stats["acceptance"] < 0.3  # about 1 in 10


def test_stops_at_its_chain_budget():
    images, stats = generate_class(FirstPixelClassifier(), StillSampler(), 50, 1, uniform, 3, batch_size=8,
                                   max_chains=20)
    assert stats["chains"] == 20 and len(images) == stats["kept"] < 50


def test_from_a_buffer_each_slot_starts_at_most_one_chain():
    """JEM's saved-buffer protocol: the buffer's class-3 slots, each once, and no more chains than slots."""
    from hdgen_cli.sampling.buffer import ReplayBuffer

    torch.manual_seed(0)
    buffer = ReplayBuffer(40, (1, 2, 2), 0, 0.05, uniform, torch.device("cpu"))
    in_class = int(((buffer.images.flatten(1)[:, 0] * 10).long() == 3).sum())
    assert 0 < in_class < 30
    images, stats = generate_class(FirstPixelClassifier(), StillSampler(), 30, 5, uniform, 3, buffer=buffer,
                                   batch_size=16)
    assert stats["chains"] == 40 and len(images) == stats["kept"] == min(in_class, 30)
    assert len({tuple(im.flatten().tolist()) for im in images}) == len(images)  # no slot twice


def test_no_chain_in_the_class_is_one_clear_error():
    never = lambda n, labels=None: torch.zeros(n, 1, 2, 2)  # noqa: E731 - always class 0
    with pytest.raises(HdgenError, match="none of 40 chains ended in class 3.*--conditional energy"):
        generate_class(FirstPixelClassifier(), StillSampler(), 4, 1, never, 3, batch_size=8, max_chains=40)


def test_cli_records_the_protocol(tmp_path, capsys):
    from hdgen_cli import api
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    ckpt = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(ckpt), "--quiet", *TINY]) == 0
    capsys.readouterr()
    model = api.load_model(ckpt, device="cpu").model
    with torch.no_grad():  # the class the tiny model gives most noise images: it will keep some
        common = int(model.scores(torch.rand(256, 1, 8, 8) * 2 - 1).argmax(1).mode().values)
    base = ["sample", "--ckpt", str(ckpt), "--n", "4", "--steps", "1", "--json", "--class", str(common)]
    assert run(base) == 0
    filtered = json.loads(capsys.readouterr().out)
    assert filtered["conditional"] == "filter" and filtered["kept"] == filtered["n"] == 4
    assert filtered["chains"] >= 4 and filtered["acceptance"] == pytest.approx(4 / filtered["chains"])
    assert run([*base, "--conditional", "energy"]) == 0
    energy = json.loads(capsys.readouterr().out)
    assert energy["conditional"] == "energy" and energy["n"] == 4 and "chains" not in energy
