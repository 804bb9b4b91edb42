"""Attacks: PGD stays in its ball and in [0, 1], eps 0 is clean, C&W fools an undefended model, BPDA."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hdgen_cli.config import load_config
from hdgen_cli.data import make_splits
from hdgen_cli.energy import LogitEnergy
from hdgen_cli.evaluation.attack import Classifier, carlini_wagner_l2, pgd


@pytest.fixture(scope="module")
def tiny():
    """A linear classifier on digits, trained for a second: accurate and undefended."""
    torch.manual_seed(0)
    data = make_splits(load_config("quickstart").data)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    net.num_classes = 10
    x, y = data.train.images.float() / 255 * 2 - 1, data.train.labels
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    model = LogitEnergy(net).eval()
    u, y = data.test.images[:100].float() / 255, data.test.labels[:100]
    return Classifier(model, "symmetric"), u, y


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("linf", 0.1), ("l2", 0.5), ("l2", 1.0)])
def test_pgd_stays_in_the_ball_and_the_image_range(tiny, norm, eps):
    clf, u, y = tiny
    adv = pgd(clf, u, y, eps, norm, steps=10)
    delta = (adv - u).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    clean = (clf.predict(u) == y).float().mean()
    robust = (clf.predict(adv) == y).float().mean()
    assert robust < clean  # a linear model is not robust, even at 8/255


def test_pgd_with_zero_budget_gives_the_clean_accuracy(tiny):
    clf, u, y = tiny
    for norm in ("linf", "l2"):
        assert torch.equal(clf.predict(pgd(clf, u, y, 0.0, norm)), clf.predict(u))


def test_carlini_wagner_finds_adversarials_on_an_undefended_model(tiny):
    clf, u, y = tiny
    u, y = u[:20], y[:20]
    adv, ok = carlini_wagner_l2(clf, u, y, steps=100)
    assert ok.float().mean() >= 0.9
    assert (clf.predict(adv[ok]) != y[ok]).all() and adv.min() >= 0 and adv.max() <= 1
    u, y = u[:10], y[:10]
    target = (y + 1) % 10
    adv, ok = carlini_wagner_l2(clf, u, y, target, steps=200)
    assert ok.float().mean() >= 0.5 and (clf.predict(adv[ok]) == target[ok]).all()


def test_bpda_backward_is_the_identity_through_purification(tiny):
    clf, u, y = tiny
    model = clf.model
    defended = Classifier(model, "symmetric", purify=lambda x: 0.5 * x, eot=1)
    g = defended.loss_grad(u[:5], y[:5], F.cross_entropy)
    x_purified = (0.5 * (u[:5] * 2 - 1)).requires_grad_(True)
    (g_direct,) = torch.autograd.grad(F.cross_entropy(model.scores(x_purified), y[:5]), x_purified)
    assert torch.allclose(g, 2 * g_direct, atol=1e-6)  # d x / d u = 2 for the symmetric range; purify skipped


def test_attack_cli_with_a_defense(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY]) == 0
    capsys.readouterr()
    assert run(["attack", "--ckpt", str(out), "--eps", "0", "--eps", "8/255", "--n", "20", "--steps", "3",
                "--defense", "sgld:steps=2", "--eot", "2", "--votes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["eps"] for r in result["results"]] == [0, 8 / 255] and result["attack_mode"] == "bpda+eot"
    assert all(r["robust_accuracy"] <= 1 for r in result["results"]) and Path(result["png"]).is_file()
    assert Path(result["png"]).parent == out / "evaluations" and Path(result["record"]).is_file()
    assert run(["attack", "--ckpt", str(out), "-a", "cw-l2", "--n", "5", "--steps", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["success_rate"] >= 0
    assert run(["attack", "--ckpt", str(out), "--defense", "purify"]) == 2
    assert "sgld:steps=L" in capsys.readouterr().err
