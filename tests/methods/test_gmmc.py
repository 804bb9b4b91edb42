"""GMMC: Max-Mahalanobis means, the MMC energy head, gamma-hat, the staged/injected sampler, the three modes."""

import json
import math

import pytest
import torch
from torch import nn

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, make_splits
from hdgen_cli.data.imageset import ImageSet
from hdgen_cli.energy import MMCEnergy, max_mahalanobis_means
from hdgen_cli.errors import UsageError
from hdgen_cli.objectives import GMMCObjective
from hdgen_cli.optim import build_optimizer
from hdgen_cli.parts import build_run
from hdgen_cli.sampling import GMMCSampler
from hdgen_cli.train import train

DIGITS = ["data.name=digits", "model.name=small_cnn", "model.width=1", "data.aug_pad=1", "optim.warmup_iters=0",
          "optim.lr=1e-3", "train.max_iters=12", "train.log_every=1", "sampler.steps=3", "sampler.buffer.size=200"]


def gmmc_config(preset: str, *overrides: str):
    return load_config(preset, DIGITS + list(overrides))


@pytest.mark.parametrize("C, d", [(2, 1), (2, 5), (3, 2), (10, 9), (10, 640), (100, 99), (100, 640)])
def test_max_mahalanobis_means_geometry(C, d):
    S = 10.0
    mu = max_mahalanobis_means(C, d, S).double()
    assert mu.shape == (C, d)
    assert torch.allclose(mu.norm(dim=1), torch.full((C,), S, dtype=torch.float64), atol=1e-3)
    gram = mu @ mu.T
    off = gram[~torch.eye(C, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -S**2 / (C - 1)), atol=1e-3)


def test_means_need_enough_feature_dimensions():
    with pytest.raises(UsageError, match="at least 9"):
        max_mahalanobis_means(10, 8, 10.0)


class Features(nn.Module):
    """phi(x) = x flattened: lets a test choose the features directly."""

    def __init__(self, dim):
        super().__init__()
        self.feature_dim, self.head, self.scale = dim, None, nn.Parameter(torch.ones(()))

    def features(self, x):
        return self.scale * x.flatten(1)


class EnergyCfg:
    mmc_scale = 10.0


def test_mmc_head_refuses_a_classifier_head_or_no_features():
    with_head = Features(4)
    with_head.head = nn.Linear(4, 3)
    with pytest.raises(UsageError, match="model.head=false"):
        MMCEnergy(with_head, EnergyCfg(), 3)
    no_features = Features(4)
    no_features.feature_dim = None
    with pytest.raises(UsageError, match="feature vector"):
        MMCEnergy(no_features, EnergyCfg(), 3)


@pytest.mark.parametrize("gamma", [1.0, 0.3])
def test_mmc_energies_match_a_direct_computation(gamma):
    model = MMCEnergy(Features(6), EnergyCfg(), 4)
    model.gamma.fill_(gamma)
    y = torch.tensor([0, 1, 2, 3, 1])
    phi = model.means[y] * 0.9 + torch.randn(5, 6) * 0.5  # near the means, so plain exp() does not underflow
    mu = model.means.double()
    e_direct = torch.stack([((phi.double() - mu[c]) ** 2).sum(1) / (2 * gamma**2) for c in range(4)], 1)  # [B, C]
    assert torch.allclose(model.energy(phi, y).double(), e_direct[torch.arange(5), y], rtol=1e-5)
    p_direct = torch.exp(-e_direct) / torch.exp(-e_direct).sum(1, keepdim=True)
    assert torch.allclose(model.scores(phi).softmax(1).double(), p_direct, atol=1e-6)
    logpx_direct = torch.log(torch.exp(-e_direct).sum(1))
    assert torch.allclose(-model.energy(phi).double(), logpx_direct, rtol=1e-5)
    # training distances never depend on gamma
    assert torch.allclose(model.half_sq_distances(phi).double(), e_direct * gamma**2, rtol=1e-5)


def test_mmc_energies_stay_finite_far_from_every_mean():
    model = MMCEnergy(Features(6), EnergyCfg(), 4)
    phi = torch.full((3, 6), 1e4 / math.sqrt(6))  # distance about 1e4 from every mean
    phi[1] *= -1
    scores, logpx = model.scores(phi), -model.energy(phi)
    assert torch.isfinite(scores).all() and torch.isfinite(logpx).all()
    assert torch.allclose(scores.softmax(1).sum(1), torch.ones(3))
    assert (logpx < -1e7).all()  # about -||phi||^2 / 2, not -inf


def test_calibrate_estimates_gamma_from_the_training_set():
    model = MMCEnergy(Features(4), EnergyCfg(), 2)
    labels = torch.tensor([0, 1, 1, 0, 1])
    # images in [0, 255] map to [-1, 1]; pick them so the features are known
    images = torch.randint(0, 256, (5, 1, 2, 2), dtype=torch.uint8)
    data = ImageSet(images, labels, 2, "toy", False)
    phi = images.float().div(255).mul(2).sub(1).flatten(1)
    expected = math.sqrt(((phi - model.means[labels]) ** 2).sum(1).mean().item() / 4)
    assert math.isclose(model.calibrate(data, "symmetric")["gamma"], expected, rel_tol=1e-5)
    assert math.isclose(float(model.gamma), expected, rel_tol=1e-5)


def test_staged_and_injected_sampling_differ_only_in_when_z_is_drawn():
    model = MMCEnergy(Features(4), EnergyCfg(), 2)
    x0, y = torch.rand(3, 4) * 2 - 1, torch.tensor([0, 1, 1])
    draws = {}

    def counting(sampler):
        original = sampler.draw_latent

        def draw(m, labels):
            draws[sampler] = draws.get(sampler, 0) + 1
            return original(m, labels)

        sampler.draw_latent = draw
        return sampler

    staged = counting(GMMCSampler(5, 0.1, 0.5, injected=False, bounds=(-1, 1)))
    injected = counting(GMMCSampler(5, 0.1, 0.5, injected=True, bounds=(-1, 1)))
    staged.run(model, x0, y)
    injected.run(model, x0, y)
    assert draws[staged] == 1 and draws[injected] == 5
    # with a deterministic latent (gamma_s = 0) the two are the same sampler
    a = GMMCSampler(5, 0.1, 0.0, injected=False, bounds=(-1, 1)).run(model, x0, y)
    b = GMMCSampler(5, 0.1, 0.0, injected=True, bounds=(-1, 1)).run(model, x0, y)
    assert torch.equal(a, b)
    # one step: the same z draw, so the same result under the same seed
    torch.manual_seed(3)
    a = GMMCSampler(1, 0.1, 0.5, injected=False).run(model, x0, y)
    torch.manual_seed(3)
    b = GMMCSampler(1, 0.1, 0.5, injected=True).run(model, x0, y)
    assert torch.equal(a, b)


def test_sampler_step_descends_the_latent_energy_by_hand():
    model = MMCEnergy(Features(4), EnergyCfg(), 2)
    x0, y = torch.zeros(2, 4), torch.tensor([0, 1])
    out = GMMCSampler(1, 0.25, 0.0, bounds=(-1, 1)).run(model, x0, y)
    # grad of ||x - mu_y||^2 / 2 at x = 0 is -mu_y; the step moves toward mu_y, then clamps
    assert torch.allclose(out, (0.25 * model.means[y]).clamp(-1, 1))


def _parts(cfg):
    data = make_splits(cfg.data).train
    run = build_run(cfg, "cpu", data)
    return data, run.model, run.objective, run.buffer


@pytest.mark.parametrize("preset", ["gmmc-dis", "gmmc-gen"])
def test_few_gmmc_steps_lower_the_loss_with_finite_energies(preset):
    cfg = gmmc_config(preset, "model.width=2", "optim.lr=3e-3")
    data, model, objective, _ = _parts(cfg)
    opt = build_optimizer(cfg.optim, model.parameters())
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    x, y = plain(data.images[:64]), data.labels[:64]
    losses = []
    for _ in range(30):
        out = objective(model, x, y, None)
        assert torch.isfinite(out.loss) and torch.isfinite(model.energy(x)).all()
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.terms["mmc"].item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 * 0.9
    assert set(out.terms) == ({"mmc"} if preset == "gmmc-dis" else {"mmc", "gen"})
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(not b.requires_grad for b in model.buffers()) and "means" not in dict(model.named_parameters())


def test_generative_term_uses_uniform_labels_and_writes_the_buffer():
    cfg = gmmc_config("gmmc-gen", "sampler.buffer.reinit=0")
    data, model, objective, buffer = _parts(cfg)
    before = buffer.images.clone()
    x, y = BatchTransform(False, 0, False, 0.0, "symmetric")(data.images[:40]), torch.zeros(40, dtype=torch.long)
    out = objective(model, x, y, None)
    assert len(torch.unique(out.chains["gen_y"])) > 1  # y' drawn over classes, not the batch's labels
    changed = (buffer.images != before).flatten(1).any(1).nonzero().squeeze(1)
    assert len(changed) == 40
    # every written slot lies in the block of its chain's class
    assert set((changed // buffer.block).tolist()) <= set(out.chains["gen_y"].tolist())


def test_joint_mode_switches_at_the_configured_epoch():
    cfg = gmmc_config("gmmc-joint", "objective.gmmc.start_epoch=2")
    objective = GMMCObjective(cfg.objective)
    assert [objective.beta_at(e) for e in (0, 1.9, 2, 7)] == [0, 0, 0.5, 0.5]
    ramped = GMMCObjective(gmmc_config("gmmc-joint", "objective.gmmc.start_epoch=2",
                                       "objective.gmmc.ramp_epochs=4").objective)
    assert [ramped.beta_at(e) for e in (1, 2, 3, 6, 9)] == [0, 0, 0.125, 0.5, 0.5]


def test_joint_training_samples_only_after_the_switch(tmp_path):
    cfg = gmmc_config("gmmc-joint", "objective.gmmc.start_epoch=1", "data.ce.batch_size=256",
                      "train.max_iters=10")  # 5 iterations per epoch: epoch 0 dis, epoch 1 gen
    train(cfg, tmp_path, quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "train"]
    assert [r["beta"] for r in steps] == [0.0] * 5 + [0.5] * 5
    assert all("gen" not in r for r in steps[:5]) and all("gen" in r for r in steps[5:])
    assert any("gamma" in r for r in rows)


def test_gmmc_cli_trains_samples_by_class_and_reports_gamma(tmp_path, capsys):
    from safetensors.torch import load_file

    from hdgen_cli.cli.app import run

    out = tmp_path / "gen"
    assert run(["train", "-p", "gmmc-gen", "--out", str(out), "--quiet", *DIGITS]) == 0
    capsys.readouterr()
    assert run(["evaluate", "--ckpt", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gamma"] > 0 and 0 <= result["accuracy"] <= 1
    for extra in ([], ["--gmmc-inject"]):
        assert run(["sample", "--ckpt", str(out), "--class", "4", "--n", "6", "--steps", "2", "--json", *extra]) == 0
        sample = json.loads(capsys.readouterr().out)
        assert sample["latent"] == ("injected" if extra else "staged")
        tensors = load_file(sample["tensors"])
        assert tensors["images"].shape == (6, 1, 8, 8) and (tensors["labels"] == 4).all()


def test_gmmc_config_errors_are_one_line(tmp_path, capsys):
    from hdgen_cli.cli.app import run

    assert run(["train", "-p", "gmmc-gen", "energy.name=logits", "--out", str(tmp_path / "r"), *DIGITS]) == 2
    assert "energy.name=mmc" in capsys.readouterr().err
    assert run(["train", "-p", "gmmc-dis", "model.head=true", "--out", str(tmp_path / "r2"), "--quiet", *DIGITS]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.head=false" in err and len(err.splitlines()) == 1
