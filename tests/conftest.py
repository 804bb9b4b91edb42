"""Shared fixtures: tiny configs on bundled digits so every test runs offline in seconds."""

from __future__ import annotations

import pytest
import torch

from hdgen_cli.config import load_config

# Tiny JEM on digits: small CNN, short chains, few iterations.
TINY = ["model.width=1", "sampler.steps=5", "sampler.buffer.size=200", "train.max_iters=12", "train.log_every=4",
        "optim.warmup_iters=0", "output.grid_size=16", "output.final_sample_steps=2"]


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_config():
    def make(*overrides: str, preset: str = "quickstart"):
        return load_config(preset, TINY + list(overrides))

    return make
