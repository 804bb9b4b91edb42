"""The fast path: bf16 autocast keeps energies in float32 and trains; channels-last; compile in place."""

import json

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.parts import DataInfo, build_model
from hdgen_cli.models.fastpath import autocast, prepare_model

INFO = DataInfo(1, 8, 10, "symmetric")
# Every agreement and training check runs on the CPU, and again on a CUDA GPU where there is one.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


@pytest.fixture
def exact_fp32_on_gpu(monkeypatch):
    """On a GPU, float32 convolutions default to TF32 (10 mantissa bits); the reference side of an
    agreement check must be true float32, so TF32 is off for the test (matmuls too)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(matmul)


@pytest.mark.parametrize("preset, extra", [("quickstart", []), ("gmmc-dis", ["model.name=small_cnn"]),
                                           ("clel-small", ["model.channels=8", "objective.clel.encoder_width=8"])])
def test_energies_stay_float32_under_bf16_autocast(preset, extra):
    model = build_model(load_config(preset, extra), INFO)
    x = torch.rand(4, 1, 8, 8)
    with autocast("bf16", torch.device("cpu")):
        e = model.energy(x)
        if model.has_classifier:
            assert model.scores(x).dtype == torch.float32
    assert e.dtype == torch.float32 and torch.isfinite(e).all()


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_and_channels_last_training_runs_with_finite_losses(tmp_path, device):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", "--device", device, *TINY,
                "train.precision=bf16", "train.channels_last=true"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert rows and all(torch.isfinite(torch.tensor([r["loss"], r["e_data"], r["e_samples"]])).all() for r in rows)


def test_channels_last_and_in_place_compile_keep_state_dict_keys():
    model = build_model(load_config("quickstart"), INFO)
    keys = list(model.state_dict())
    prepare_model(model, channels_last=True, compile=True)
    conv = model.backbone.first_layer.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert list(model.state_dict()) == keys  # checkpoints load with or without compile
    # every part is compiled but the first layer, whose output PYLD hooks for its co-state
    parts = [m for m in model.backbone.children() if m is not model.backbone.first_layer]
    assert parts and all(getattr(m, "_compiled_call_impl", None) is not None for m in parts)
    assert getattr(model.backbone.first_layer, "_compiled_call_impl", None) is None


def _wrn_parts(device="cpu"):
    """A small BatchNorm WRN (the JEM++ family's layout), its JEM objective and fixed batches."""
    import copy

    from hdgen_cli.objectives import JEMObjective
    from hdgen_cli.parts import build_buffer, build_sampler

    cfg = load_config("jempp-m5", ["model.depth=10", "model.width=1", "sampler.buffer.size=100",
                                   "sampler.buffer.init=uniform"])
    info = DataInfo(3, 16, 10, "symmetric")
    torch.manual_seed(0)
    model = build_model(cfg, info).to(device).train()
    sampler = build_sampler(cfg.sampler, info)
    objective = JEMObjective(cfg.objective, sampler, build_buffer(cfg, info, device))
    x = (torch.rand(3, 16, 3, 16, 16) * 2 - 1).to(device)
    return model, copy.deepcopy(model), sampler, objective, x, (torch.arange(16) % 10).to(device)


# Stated tolerances (measured: channels-last 3e-7, bf16 8e-4 on energies and loss, 5e-3 on chains):
# channels-last reorders the same float32 sums; bf16 autocast rounds every conv's inputs to 8
# mantissa bits, relative 1e-2 on energies and the loss and 2e-2 on chains in the [-1, 1] range.
# torch.compile fuses the same float32 operations in another order: 1e-4 (measured 6e-7).
@pytest.mark.parametrize("fast, tol", [({"channels_last": True}, 1e-5), ({"precision": "bf16"}, 1e-2),
                                       ({"compile": True}, 1e-4)])
@pytest.mark.parametrize("device", DEVICES)
def test_fast_paths_agree_with_float32(fast, tol, device, exact_fp32_on_gpu):
    model, fast_model, sampler, objective, x, y = _wrn_parts(device)
    if fast.get("channels_last") or fast.get("compile"):
        prepare_model(fast_model, channels_last=bool(fast.get("channels_last")), compile=bool(fast.get("compile")))

    def run(m, use_amp):
        with autocast("bf16", x.device) if use_amp else torch.enable_grad():
            energies = m.energy(x[0])
            torch.manual_seed(3)
            chains = sampler.run(m, x[1].clone(), steps=2)  # PYLD-2-5, BatchNorm in train mode
            out = objective(m, x[0], y, x[2], chains={"px": x[1]})
        return energies.detach(), chains, out.loss.detach()

    ref = run(model, False)
    got = run(fast_model, bool(fast.get("precision")))
    scale = lambda t: t.abs().max().clamp_min(1.0)  # noqa: E731
    assert (got[0] - ref[0]).abs().max() <= tol * scale(ref[0])  # energies
    assert (got[2] - ref[2]).abs() <= tol * scale(ref[2])  # the loss
    assert (got[1] - ref[1]).abs().max() <= 2 * tol  # the sampler's chains


def test_channels_last_auto_is_on_for_a_cpu_in_training_and_loading(tmp_path, monkeypatch):
    from hdgen_cli.cli.app import run
    from hdgen_cli.errors import UsageError
    from hdgen_cli.loading import load_model
    from hdgen_cli import parts
    from hdgen_cli.models.fastpath import use_channels_last
    from tests.conftest import TINY

    assert load_config("quickstart").train.channels_last == "auto"
    assert use_channels_last("auto", "cpu") and not use_channels_last("auto", torch.device("cuda"))
    assert use_channels_last(True, torch.device("cuda")) and not use_channels_last(False, "cpu")
    assert load_config("jem", ["train.channels_last=false"]).train.channels_last is False
    with pytest.raises(UsageError, match="train.channels_last"):
        load_config("jem", ["train.channels_last=sideways"])

    seen = []
    real = parts.prepare_model
    monkeypatch.setattr(parts, "prepare_model", lambda m, cl, comp: seen.append(cl) or real(m, cl, comp))
    layouts = {}
    for setting in ("auto", "false"):
        out = tmp_path / setting
        assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "train.max_iters=2",
                    f"train.channels_last={setting}"]) == 0
        model = load_model(out / "last.safetensors", "cpu").model
        conv = next(m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        layouts[setting] = conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert seen == [True, False]  # the training model's layout on this CPU
    assert layouts == {"auto": True, "false": False}  # and the evaluation commands'
