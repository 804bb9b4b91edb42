"""TensorBoard logging: read back with tensorboard's own reader, the events hold the
same scalars as metrics.jsonl, the guard's events, energy histograms and buffer grids."""

import json

import pytest

from hdgen_cli.cli.app import run
from tests.conftest import TINY

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(folder):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0,
                                                                         "tensors": 0})
    acc.Reload()
    return acc


def test_events_hold_the_scalars_of_metrics_jsonl(tmp_path):
    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "train.log.tensorboard=true",
                "train.max_iters=44", "train.log_every=4"]) == 0  # 2 epochs of 22 iterations
    acc = _read(out / "tb")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "train"]
    keys = {k for r in steps for k, v in r.items() if k not in ("kind", "iter") and isinstance(v, (int, float))}
    assert {t.removeprefix("train/") for t in acc.Tags()["scalars"] if t.startswith("train/")} == keys
    for key in keys:
        logged = {(r["iter"], r[key]) for r in steps if key in r}
        read = {(e.step, e.value) for e in acc.Scalars(f"train/{key}")}
        assert len(read) == len(logged)
        for (it, value), (it2, value2) in zip(sorted(logged), sorted(read)):
            assert it == it2 and value2 == pytest.approx(value, rel=1e-6, abs=1e-12)  # float32 on disk
    tested = [r for r in rows if "test_accuracy" in r][0]["test_accuracy"]
    assert acc.Scalars("eval/test_accuracy")[-1].value == pytest.approx(tested, rel=1e-6)
    assert {"energy/data", "energy/samples"} <= set(acc.Tags()["histograms"])
    assert len(acc.Histograms("energy/data")) == 2  # one per epoch end
    assert "samples/buffer" in acc.Tags()["images"]


def test_divergences_are_guard_events(tmp_path):
    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "train.log.tensorboard=true",
                "optim.lr=1.0", "train.max_iters=30", "train.log_every=2", "train.guard.remedies=lower_lr",
                "train.guard.lr_factor=0.001", "train.guard.snapshot_every=2"]) == 0
    acc = _read(out / "tb")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    divergences = [r for r in rows if "rolled_back_to" in r]
    assert divergences and [e.step for e in acc.Scalars("guard/divergence")] == [d["iter"] for d in divergences]


def test_without_the_package_it_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert run(["train", "-p", "quickstart", "--out", str(tmp_path / "new"), "--quiet", *TINY,
                "train.log.tensorboard=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "hdgen[tensorboard]"' in err
    assert not (tmp_path / "new").exists()
