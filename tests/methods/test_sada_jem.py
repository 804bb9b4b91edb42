"""SADA-JEM: augmented data only on the classifier branch, its schedules, and the presets training on digits
(SAM itself: tests/optim/test_sam.py)."""

import math

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, make_splits, to_model_range
from hdgen_cli.optim import lr_at
from hdgen_cli.train import train


def test_classifier_branch_is_augmented_and_generative_branch_is_not():
    cfg = load_config("sada-jem-k5", ["data.name=digits", "data.aug_pad=2"])
    data = make_splits(cfg.data).train
    px = BatchTransform.from_config(cfg.data.px, cfg.data, data.default_flip)
    ce = BatchTransform.from_config(cfg.data.ce, cfg.data, data.default_flip)
    batch = data.images[:128]
    assert torch.equal(px(batch), to_model_range(batch, "symmetric"))  # untouched
    assert not torch.equal(ce(batch), to_model_range(batch, "symmetric"))  # randomly cropped
    assert (cfg.data.px.batch_size, cfg.data.ce.batch_size) == (64, 128)


def test_cosine_schedule_after_warmup():
    cfg = load_config("sada-jem-k5", ["optim.schedule=cosine", "optim.warmup_iters=10"]).optim
    assert math.isclose(lr_at(cfg, 5, 0, 110), 0.05)
    assert math.isclose(lr_at(cfg, 10, 0, 110), 0.1)
    assert math.isclose(lr_at(cfg, 60, 3, 110), 0.05, rel_tol=1e-9)
    assert lr_at(cfg, 110, 9, 110) < 1e-12


TINY_BN = ["data.name=digits", "model.name=small_cnn", "model.width=1", "sampler.buffer.size=100", "train.max_iters=6",
           "train.log_every=2", "optim.warmup_iters=2", "optim.lr=0.05", "output.grid_size=4"]


@pytest.mark.parametrize("preset, extra", [("sada-jem-k5", ["sampler.steps=2"]),
                                           ("jempp-m5", ["sampler.steps=2", "sampler.inner_steps=2"])])
def test_presets_train_on_digits_with_finite_energies(preset, extra, tmp_path):
    import json

    result = train(load_config(preset, TINY_BN + extra), tmp_path, quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["kind"] == "train"]
    assert rows and all(math.isfinite(r["e_data"]) and math.isfinite(r["e_samples"]) for r in rows)
    assert result.iterations == 6 and list(tmp_path.glob("gm-digits-*.safetensors"))
    from hdgen_cli import api

    images, _, details = api.sample(tmp_path, n=3, steps=1)  # fresh chains from the cached mixture
    assert images.shape == (3, 1, 8, 8) and details["init"] == "noise"
