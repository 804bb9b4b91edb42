"""JEM: energies, a few training steps lower the loss with finite energies, the softmax special case."""

import math

import torch

from hdgen_cli.data import BatchStream, BatchTransform, make_splits
from hdgen_cli.energy import LogitEnergy
from hdgen_cli.objectives import JEMObjective
from hdgen_cli.optim import build_optimizer, lr_at
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_sampler
from hdgen_cli.train import train


def test_logit_energy_definitions():
    backbone = torch.nn.Linear(5, 4)
    backbone.num_classes = 4
    model = LogitEnergy(backbone)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 0, 1])
    f = backbone(x)
    assert torch.allclose(model.energy(x), -torch.logsumexp(f, 1))
    assert torch.allclose(model.energy(x, y), -f[torch.arange(6), y])
    assert model.energy(x, y).shape == (6,)


def _jem_parts(tiny_config, *overrides):
    cfg = tiny_config(*overrides)
    data = make_splits(cfg.data).train
    info = DataInfo(data.channels, data.image_size, data.num_classes, cfg.data.pixel_range)
    model = build_model(cfg, info)
    buffer = build_buffer(cfg, info, "cpu")
    objective = JEMObjective(cfg.objective, build_sampler(cfg.sampler, info), buffer)
    return cfg, data, model, objective, buffer


def test_few_jem_steps_lower_the_loss_with_finite_energies(tiny_config):
    cfg, data, model, objective, buffer = _jem_parts(tiny_config, "optim.lr=1e-3", "model.width=4")
    opt = build_optimizer(cfg.optim, model.parameters())
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    x_lab, y_lab = plain(data.images[:64]), data.labels[:64]
    x_data = plain(data.images[64:128])
    losses, ces = [], []
    for _ in range(25):
        out = objective(model, x_lab, y_lab, x_data)
        assert torch.isfinite(out.loss)
        assert math.isfinite(out.stats["e_data"].item()) and math.isfinite(out.stats["e_samples"].item())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        ces.append(out.terms["ce"].item())
    # The p(x) term is adversarial and noisy; averaged over 5 steps the joint loss still falls.
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    assert sum(ces[-5:]) / 5 < sum(ces[:5]) / 5 - 0.2
    assert set(out.terms) == {"ce", "px"} and out.samples.shape == x_data.shape
    # every parameter receives a gradient from the joint loss
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_samples_are_written_back_to_the_buffer(tiny_config):
    _, data, model, objective, buffer = _jem_parts(tiny_config, "sampler.buffer.reinit=0")
    before = buffer.images.clone()
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    objective(model, plain(data.images[:8]), data.labels[:8], plain(data.images[8:16]))
    changed = (buffer.images != before).flatten(1).any(1)
    assert int(changed.sum()) == 8


def test_conditional_term_uses_class_blocks(tiny_config):
    _, data, model, objective, buffer = _jem_parts(tiny_config, "objective.pxy_weight=1", "objective.px_weight=0")
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    out = objective(model, plain(data.images[:20]), data.labels[:20], None)
    assert set(out.terms) == {"ce", "pxy"} and torch.isfinite(out.loss)


def test_schedule_warmup_and_step_decay(tiny_config):
    cfg = tiny_config("optim.lr=0.1", "optim.warmup_iters=10", "optim.decay_epochs=[2,4]", "optim.decay_rate=0.2").optim
    assert math.isclose(lr_at(cfg, 1, 0), 0.01) and math.isclose(lr_at(cfg, 10, 0), 0.1)
    assert math.isclose(lr_at(cfg, 500, 1), 0.1)
    assert math.isclose(lr_at(cfg, 500, 2), 0.02) and math.isclose(lr_at(cfg, 900, 5), 0.004)


def test_softmax_is_the_same_trainer_without_px(tiny_config, tmp_path):
    cfg = tiny_config("sampler.name=none", "objective.px_weight=0", "model.norm=batch", "optim.name=sgd",
                      "optim.lr=0.05", "train.max_iters=30")
    result = train(cfg, tmp_path, quiet=True)
    assert result.samples_png is None and result.test_accuracy > 0.3
    assert not any(k.startswith("buffer.") for k in __import__("safetensors.torch").torch.load_file(result.checkpoint))


def test_streams_stay_independent(tiny_config):
    cfg = tiny_config()
    data = make_splits(cfg.data).train
    t = BatchTransform(False, 0, False, 0.0, "symmetric")
    a, b = BatchStream(data, 64, t, seed=1), BatchStream(data, 64, t, seed=2)
    assert not torch.equal(a.next()[1], b.next()[1])


def test_energy_l2_forms_match_their_closed_forms():
    from hdgen_cli.objectives.terms import energy_l2

    e_data, e_q = torch.tensor([1.0, -3.0]), torch.tensor([2.0, 4.0])
    assert energy_l2(e_data, e_q).item() == (1 + 9) / 2 + (4 + 16) / 2  # mean of squares (IGEBM)
    assert energy_l2(e_data, e_q, "square_of_mean").item() == (-1.0) ** 2 + 3.0**2  # the JEM++/SADA code's l2_coeff


def test_l2_form_selects_the_term_the_step_adds(tiny_config):
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    terms = {}
    for form in ("mean_of_squares", "square_of_mean"):
        torch.manual_seed(0)
        _, data, model, objective, _ = _jem_parts(tiny_config, "objective.l2_weight=0.5", f"objective.l2_form={form}")
        out = objective(model, plain(data.images[:16]), data.labels[:16], plain(data.images[16:32]))
        terms[form] = out.terms["l2"].item()
        assert torch.isclose(out.loss, out.terms["ce"] + out.terms["px"] + 0.5 * out.terms["l2"])
        means = out.stats["e_data"] ** 2 + out.stats["e_samples"] ** 2
        if form == "square_of_mean":
            assert torch.isclose(out.terms["l2"], means)
    assert terms["square_of_mean"] <= terms["mean_of_squares"] * (1 + 1e-6)  # Jensen: (mean E)^2 <= mean E^2
