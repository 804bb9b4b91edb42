"""No wasted work: one forward pass where the math needs one, input-only sampler gradients."""

import pytest
import torch

from hdgen_cli.data import make_splits, to_model_range
from hdgen_cli.errors import UsageError
from hdgen_cli.models.norm import independent_passes
from hdgen_cli.objectives import JEMObjective
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_sampler
from hdgen_cli.train import train


def _parts(tiny_config, *overrides):
    cfg = tiny_config(*overrides)
    data = make_splits(cfg.data).train
    info = DataInfo(data.channels, data.image_size, data.num_classes, cfg.data.pixel_range)
    model = build_model(cfg, info)
    objective = JEMObjective(cfg.objective, build_sampler(cfg.sampler, info), build_buffer(cfg, info, "cpu"))
    x = to_model_range(data.images[:48], "symmetric")
    return model, objective, x[:16], data.labels[:16], x[16:32], x[32:48]


class _ForwardCounter:
    def __init__(self, module):
        self.calls, self.images = 0, 0
        module.register_forward_hook(self._hook)

    def _hook(self, _m, inputs, _out):
        self.calls += 1
        self.images += len(inputs[0])


@pytest.mark.parametrize("fused", [True, False])
def test_norm_free_models_fuse_every_batch_into_one_pass_on_a_gpu(tiny_config, monkeypatch, fused):
    """One concatenated pass on a GPU, one pass per batch on a CPU (faster there): the same numbers."""
    from hdgen_cli.objectives import jem

    assert jem.fuse_batches(torch.zeros(1)) is False  # this machine's CPU tensors take separate passes
    monkeypatch.setattr(jem, "fuse_batches", lambda x: fused)
    model, objective, x_lab, y_lab, x_data, x_q = _parts(tiny_config, "objective.pxy_weight=1")
    assert independent_passes(model)
    x_qy = x_q.flip(0)
    counter = _ForwardCounter(model.backbone)
    out = objective(model, x_lab, y_lab, x_data, chains={"px": x_q, "pxy": x_qy})
    assert (counter.calls, counter.images) == ((1, 64) if fused else (4, 64))
    # the same numbers as one pass per batch
    expected = (torch.nn.functional.cross_entropy(model.scores(x_lab), y_lab)
                + model.energy(x_data).mean() - model.energy(x_q).mean()
                + model.energy(x_lab, y_lab).mean() - model.energy(x_qy, y_lab).mean())
    assert torch.allclose(out.loss, expected, atol=1e-5)
    grads = torch.autograd.grad(out.loss, list(model.parameters()))
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, expected_grads))


@pytest.mark.parametrize("shared, passes", [(False, 3), (True, 2)])
def test_batchnorm_models_run_one_pass_per_batch(tiny_config, shared, passes):
    model, objective, x_lab, y_lab, x_data, x_q = _parts(tiny_config, "model.norm=batch")
    assert not independent_passes(model)
    counter = _ForwardCounter(model.backbone)
    out = objective(model, x_lab, y_lab, None if shared else x_data, chains={"px": x_q})
    assert counter.calls == passes  # data, samples, CE; or the CE batch serving as data, samples
    assert torch.isfinite(out.loss)


def test_shared_batch_reads_the_labelled_batch_for_px(tiny_config):
    model, objective, x_lab, y_lab, _, x_q = _parts(tiny_config)
    out = objective(model, x_lab, y_lab, None, chains={"px": x_q})
    assert torch.allclose(out.terms["px"], model.energy(x_lab).mean() - model.energy(x_q).mean(), atol=1e-5)
    assert torch.allclose(out.terms["ce"], torch.nn.functional.cross_entropy(model.scores(x_lab), y_lab), atol=1e-5)


def test_shared_batch_config_drops_the_px_stream_and_trains(tiny_config, tmp_path):
    cfg = tiny_config("data.shared_batch=true")
    assert cfg.uses_ce_stream and not cfg.uses_px_stream
    result = train(cfg, tmp_path / "run", quiet=True)
    assert result.iterations == 12 and result.test_accuracy is not None
    with pytest.raises(UsageError, match="jem objective only"):
        tiny_config("data.shared_batch=true", preset="gmmc-dis")


def test_sampler_passes_differentiate_the_input_only(tiny_config):
    model, objective, *_ = _parts(tiny_config)
    seen = []

    def energy_fn(x):
        seen.append(any(p.requires_grad for p in model.parameters()))
        return model.energy(x)

    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    objective.sampler.run(model, x0, energy_fn=energy_fn)
    assert seen and not any(seen)  # no autograd edges to the weights while sampling
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
