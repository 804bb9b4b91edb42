"""CLEL: the spherical energy, NT-Xent with generated negatives, gradient flow, transitions, end to end."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, make_splits
from hdgen_cli.energy import SphericalLatentEnergy
from hdgen_cli.objectives import build_objective
from hdgen_cli.objectives.clel import nt_xent
from hdgen_cli.optim import build_optimizer
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_sampler
from hdgen_cli.sampling import SGLDSampler

TINY_CLEL = ["data.name=digits", "model.channels=8", "objective.clel.encoder_width=8", "sampler.steps=3",
             "sampler.buffer.size=200", "train.max_iters=4", "train.log_every=1", "optim.warmup_iters=0",
             "optim.lr=1e-3", "output.grid_size=8"]


class Features(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.feature_dim, self.head, self.lin = dim, None, nn.Linear(dim, dim)

    def features(self, x):
        return self.lin(x)


class Cfg:
    latent_beta = 0.3


def test_marginal_energy_is_half_the_squared_norm_and_conditionals_add_cosines():
    model = SphericalLatentEnergy(Features(6), Cfg())
    x = torch.randn(4, 6)
    f = model.backbone.features(x)
    assert torch.allclose(model.energy(x), 0.5 * (f**2).sum(1))
    z = torch.randn(2, 6)
    g = model.projector(f / f.norm(dim=1, keepdim=True))
    cos = sum(F.cosine_similarity(g, z[a].expand_as(g), dim=1) for a in range(2))
    assert torch.allclose(model.conditional_energy(x, z), 0.5 * (f**2).sum(1) - 0.3 * cos, atol=1e-6)
    assert torch.allclose(model.conditional_energy(x, z[0], beta=0.0), model.energy(x))
    assert torch.allclose(g.norm(dim=1), torch.ones(4))


def test_nt_xent_equals_a_direct_computation_with_generated_negatives():
    u = F.normalize(torch.randn(6, 5), dim=1)  # 3 images x 2 views: rows i and i + 3 pair up
    extra = F.normalize(torch.randn(2, 5), dim=1)
    T = 0.2
    total = 0.0
    for i in range(6):
        pos = i + 3 if i < 3 else i - 3
        keys = [j for j in range(6) if j != i]
        denom = sum(math.exp(float(u[i] @ u[j]) / T) for j in keys) + sum(math.exp(float(u[i] @ e) / T) for e in extra)
        total += -(float(u[i] @ u[pos]) / T - math.log(denom))
    assert math.isclose(float(nt_xent(u, extra, T)), total / 6, rel_tol=1e-5)
    assert float(nt_xent(u, extra, T)) > float(nt_xent(u, None, T))  # the generated negatives are in the sum


def _parts(*overrides):
    cfg = load_config("clel-small", TINY_CLEL + list(overrides))
    data = make_splits(cfg.data).train
    info = DataInfo(data.channels, data.image_size, data.num_classes, cfg.data.pixel_range)
    model = build_model(cfg, info)
    objective = build_objective(cfg.objective, build_sampler(cfg.sampler, info), build_buffer(cfg, info, "cpu"), info)
    objective.bind(model)
    x = BatchTransform.from_config(cfg.data.px, cfg.data, False)(data.images[:64])
    return cfg, model, objective, x


def test_ebm_gets_no_gradient_from_the_encoder_loss_and_vice_versa():
    _, model, objective, x = _parts()
    out = objective(model, None, None, x)
    out.terms["simclr"].backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert any(p.grad is not None and p.grad.any() for p in objective.encoder.parameters())
    objective.encoder.zero_grad(set_to_none=True)
    (out.terms["cd"] + out.terms["l2"] - model.beta * out.terms["latent"]).backward()
    assert all(p.grad is None for p in objective.encoder.parameters())


def test_latent_target_comes_from_its_own_augmentation_and_its_own_encoder_pass():
    """[CLEL] Alg. 1 line 5: z+ = sg(h(t(x+))) from a third augmentation, not one of the two NT-Xent views."""
    _, model, objective, x = _parts()
    seen = []
    augment = objective.augment

    def recording_augment(batch):
        seen.append(augment(batch))
        return seen[-1]

    objective.augment = recording_augment
    encoded, features = [], []
    hook = objective.encoder.register_forward_hook(
        lambda m, i, o: encoded.append((len(i[0]), torch.is_grad_enabled(), o.detach())))
    plain_features = model.features
    model.features = lambda b: features.append((b, plain_features(b))) or features[-1][1]
    out = objective(model, None, None, x)
    hook.remove()
    assert len(seen) == 3 and [e[:2] for e in encoded] == [(len(x), False), (2 * len(x), True)]
    f_pos = next(f for b, f in features if b.shape == x.shape and torch.equal(b, x)).detach()
    direction = model.direction(f_pos)
    z_own, z_view1 = F.normalize(encoded[0][2], dim=1), F.normalize(encoded[1][2][:len(x)], dim=1)
    assert torch.allclose(out.terms["latent"], (direction * z_own).sum(1).mean(), atol=1e-6)
    assert not torch.allclose(out.terms["latent"], (direction * z_view1).sum(1).mean(), atol=1e-4)


def test_few_clel_steps_lower_each_networks_loss_with_finite_energies():
    """The two losses play against each other through the generated negatives, so each network is
    checked training alone: the EBM on L_EBM (its latent term aligns g with the encoder), then the
    encoder on NT-Xent through the objective's own optimizer, schedule and EMA (`after_step`)."""
    from hdgen_cli.data.strong_aug import StrongAugment

    cfg, model, objective, x = _parts()
    opt = build_optimizer(cfg.optim, model.parameters())
    latent, ebm = [], []
    for it in range(1, 9):
        objective.iteration, objective.total_iters = it, 100
        out = objective(model, None, None, x)
        assert torch.isfinite(out.loss) and math.isfinite(out.stats["e_data"]) and math.isfinite(out.stats["e_samples"])
        loss_ebm = out.terms["cd"] + cfg.objective.clel.alpha * out.terms["l2"] - model.beta * out.terms["latent"]
        opt.zero_grad()
        loss_ebm.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
        latent.append(out.terms["latent"].item())
        ebm.append(loss_ebm.item())
    assert sum(latent[-3:]) / 3 > latent[0] + 0.2 and sum(ebm[-3:]) / 3 < ebm[0]

    # 8x8 digits are too small for 8 %-area crops to teach anything in a few steps: milder views
    objective.augment = StrongAugment(scale=(0.8, 1.0), p_jitter=0.0, p_gray=0.0)
    simclr = []
    for it in range(1, 9):
        objective.iteration = it
        out = objective(model, None, None, x)
        out.terms["simclr"].backward()
        objective.after_step()
        simclr.append(out.terms["simclr"].item())
    assert sum(simclr[-3:]) / 3 < sum(simclr[:3]) / 3 - 0.1
    # the EMA copies follow the online networks (still plain copies this early)
    online = dict(model.named_parameters())
    assert all(torch.equal(p, online[k]) for k, p in objective.ema_model.model.named_parameters())


def test_transition_is_applied_once_per_call_and_every_k_steps_of_a_long_run():
    calls = []
    sampler = SGLDSampler(4, 0.1, 0.0, bounds=(0, 1), transition=lambda x: calls.append(1) or x)
    model = SphericalLatentEnergy(Features(6), Cfg())
    x = torch.rand(3, 6)
    sampler.run(model, x)
    assert len(calls) == 1
    sampler.run(model, x, steps=12)
    assert len(calls) == 1 + 3


def test_dequantised_data_fills_each_pixel_bin():
    u8 = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    x = BatchTransform(False, 0, False, 0.0, "unit", dequantize=True)(u8)
    assert (x >= u8.float() / 256).all() and (x < (u8.float() + 1) / 256).all()


def test_clel_trains_samples_from_the_ema_and_conditions_on_images(tmp_path, capsys):
    from PIL import Image
    from safetensors.torch import load_file

    from hdgen_cli.cli.app import run

    out = tmp_path / "clel"
    assert run(["train", "-p", "clel-small", "--out", str(out), "--quiet", "--json", *TINY_CLEL]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test_accuracy"] is None and summary["samples_png"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "train"]
    assert all(math.isfinite(r["e_data"]) and math.isfinite(r["e_samples"]) for r in steps)
    tensors = load_file(str(out / "last.safetensors"))
    assert any(k.startswith("objective.ema_model.") for k in tensors)
    assert any(k.startswith("objective.ema_encoder.") for k in tensors)
    # an image to condition on, and a folder holding two
    (tmp_path / "cond").mkdir()
    for i in range(2):
        Image.fromarray((torch.rand(8, 8) * 255).byte().numpy(), "L").save(tmp_path / "cond" / f"{i}.png")
    for args in ([], ["--like", str(tmp_path / "cond" / "0.png")], ["--like", str(tmp_path / "cond"), "--like",
                                                                  str(tmp_path / "cond" / "1.png")]):
        assert run(["sample", "--ckpt", str(out), "--n", "3", "--steps", "2", "--json", *args]) == 0
        result = json.loads(capsys.readouterr().out)
        images = load_file(result["tensors"])["images"]
        assert images.shape == (3, 1, 8, 8) and torch.isfinite(images).all()
        assert len(result.get("like", [])) == args.count("--like")
    # resuming restores the encoder, its optimizer and both EMA copies
    assert run(["train", "--resume", str(out), "--out", str(tmp_path / "more"), "--quiet", "--json",
                "train.max_iters=6"]) == 0
    assert json.loads(capsys.readouterr().out)["iterations"] == 6
    # OOD: s(x) with the EMA encoder as log p(x); there is no p(y|x) to take a max of
    assert run(["ood", "--ckpt", str(out), "--n", "10", "--json"]) == 0
    ood = json.loads(capsys.readouterr().out)
    assert {r["score"] for r in ood["results"]} == {"logpx", "grad-norm"} and ood["beta_ood"] == 0.1
    assert run(["ood", "--ckpt", str(out), "--n", "10", "--score", "maxprob"]) == 2
    assert "no classifier" in capsys.readouterr().err
    assert run(["evaluate", "--ckpt", str(out)]) == 2
    assert "no classifier" in capsys.readouterr().err
    assert run(["sample", "--ckpt", str(out), "--like", str(tmp_path / "missing.png"), "--n", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "not found" in err and len(err.splitlines()) == 1
    assert run(["sample", "--ckpt", str(out), "--class", "3", "--n", "1"]) == 2  # refused before any chain runs
    assert "no classes to sample" in capsys.readouterr().err


@pytest.mark.parametrize("override, fragment", [("energy.name=logits", "energy.name=spherical"),
                                                ("objective.clel.ebm_batch=128", "ebm_batch")])
def test_clel_config_errors(override, fragment):
    with pytest.raises(Exception, match=fragment):
        load_config("clel-small", [override])
