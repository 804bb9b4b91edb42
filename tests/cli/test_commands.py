"""The command line end to end on bundled data: train -> evaluate -> sample, presets, error contract."""

import json

import pytest
from safetensors.torch import load_file

from hdgen_cli.cli.app import run
from tests.conftest import TINY


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert run(["train", "--preset", "quickstart", "--out", str(out), "--quiet", *TINY]) == 0
    return out


def test_train_writes_run_files(run_dir):
    for name in ("config.json", "metrics.jsonl", "last.safetensors", "samples.png"):
        assert (run_dir / name).is_file(), name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in records if r["kind"] == "train"]
    assert {"loss", "ce", "px", "e_data", "e_samples", "acc", "lr"} <= set(train_rows[-1])
    assert json.loads((run_dir / "config.json").read_text())["model"]["name"] == "small_cnn"


def test_train_json_summary(tmp_path, capsys):
    assert run(["train", "-p", "quickstart", "--out", str(tmp_path / "r"), "--quiet", "--json", *TINY]) == 0
    summary = _json(capsys)
    assert {"test_accuracy", "test_nll", "checkpoint", "samples_png", "run_dir"} <= set(summary)
    assert 0 <= summary["test_accuracy"] <= 1


def test_existing_run_dir_needs_force(run_dir, capsys):
    assert run(["train", "-p", "quickstart", "--out", str(run_dir), "--quiet", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "--force" in err and len(err.splitlines()) == 1


def test_evaluate_json(run_dir, capsys):
    assert run(["evaluate", "--ckpt", str(run_dir), "--json"]) == 0
    result = _json(capsys)
    assert result["split"] == "test" and result["n"] == 359 and result["protocol"] == "clean"
    assert 0 <= result["accuracy"] <= 1 and result["nll"] > 0


# The tiny run may put no chain in class 3, so --class uses the energy protocol here (the filter
# protocol has its own tests in test_conditional_sampling.py).
@pytest.mark.parametrize("args", [[], ["--class", "3", "--conditional", "energy"], ["--init", "buffer"]])
def test_sample_writes_png_and_tensors(run_dir, tmp_path, capsys, args):
    png = tmp_path / "s.png"
    assert run(["sample", "--ckpt", str(run_dir), "--n", "5", "--steps", "3", "--out", str(png), "--json", *args]) == 0
    result = _json(capsys)
    tensors = load_file(result["tensors"])
    assert png.is_file() and tensors["images"].shape == (5, 1, 8, 8)
    assert tensors["images"].min() >= 0 and tensors["images"].max() <= 1
    if "--class" in args:
        assert (tensors["labels"] == 3).all()


def test_resume_extends_a_run(run_dir, tmp_path, capsys):
    assert run(["train", "--resume", str(run_dir), "--out", str(tmp_path / "more"), "--quiet", "--json",
                "train.max_iters=14"]) == 0
    assert _json(capsys)["iterations"] == 14


def test_presets_list_and_show(capsys):
    assert run(["presets", "list", "--json"]) == 0
    names = [p["name"] for p in _json(capsys)]
    assert {"jem", "softmax", "quickstart"} <= set(names)
    assert run(["presets", "show", "jem", "sampler.steps=40", "--json"]) == 0
    assert _json(capsys)["sampler"]["steps"] == 40
    assert run(["presets", "show", "jem"]) == 0
    assert "sampler.buffer.reinit = 0.05" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment, code", [
    (["train", "--preset", "jemm"], "did you mean 'jem'", 2),
    (["train", "--preset", "jem", "optim.lrr=1e-4"], "did you mean 'optim.lr'", 2),
    (["train", "--preset", "jem", "sampler.steps=-1"], "sampler.steps", 2),
    (["presets", "show", "softmaks"], "did you mean 'softmax'", 2),
    (["train", "--bogus"], "No such option", 2),
    (["sample", "--ckpt", "/nonexistent/x.safetensors"], "not found", 1),
    (["evaluate", "--ckpt", "/nonexistent"], "not found", 1),
    (["train", "-p", "quickstart", "data.name=cifar10", "--data-dir", "/nonexistent/data"], "--download", 1),
])
def test_bad_input_is_one_line_with_exit_code(argv, fragment, code, capsys, tmp_path):
    if argv[0] == "train" and "--out" not in argv:
        argv = argv + ["--out", str(tmp_path / "r")]
    assert run(argv) == code
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_sample_class_out_of_range(run_dir, capsys):
    assert run(["sample", "--ckpt", str(run_dir), "--class", "12", "--n", "2", "--steps", "1"]) == 2
    assert "0..9" in capsys.readouterr().err
