"""The fast path: bf16 autocast keeps energies in float32 and trains; channels-last; compile in place."""

import json

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.parts import DataInfo, build_model
from hdgen_cli.train.fastpath import autocast, prepare_model

INFO = DataInfo(1, 8, 10, "symmetric")


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


def test_bf16_and_channels_last_training_runs_with_finite_losses(tmp_path):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "train.precision=bf16",
                "train.channels_last=true"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert rows and all(torch.isfinite(torch.tensor([r["loss"], r["e_data"], r["e_samples"]])).all() for r in rows)


def test_channels_last_and_in_place_compile_keep_state_dict_keys():
    model = build_model(load_config("quickstart"), INFO)
    keys = list(model.state_dict())
    prepare_model(model, channels_last=True, compile=True)
    conv = model.backbone.first_layer.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert list(model.state_dict()) == keys  # checkpoints load with or without compile
    assert getattr(model.backbone, "_compiled_call_impl", None) is not None
