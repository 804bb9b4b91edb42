"""What a user sees: the newest run by default, progress, unwrapped piped lines, file
modes, samples that never overwrite, clean failure."""

import json
import os
import shutil
import stat

import pytest
import torch
from safetensors.torch import load_file

from hdgen_cli import progress
from hdgen_cli.cli.app import run
from tests.conftest import TINY


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """A runs folder with two trained runs; `newer` was written last."""
    root = tmp_path_factory.mktemp("runs")
    assert run(["train", "-p", "quickstart", "--out", str(root / "older"), "--quiet", *TINY]) == 0
    shutil.copytree(root / "older", root / "newer")
    os.utime(root / "older" / "last.safetensors", (1_000_000, 1_000_000))
    return root


def test_commands_default_to_the_newest_run(runs_root, monkeypatch, capsys):
    monkeypatch.setenv("HDGEN_RUNS", str(runs_root))
    for argv in (["sample", "--n", "2", "--steps", "1", "--json"], ["evaluate", "--json"], ["calibrate", "--json"],
                 ["ood", "--score", "grad-norm", "--n", "20", "--json"], ["attack", "--n", "4", "--steps", "1", "--json"]):
        assert run(argv) == 0, argv
        captured = capsys.readouterr()
        assert f"using {runs_root / 'newer'} (newest)" in captured.err, argv
        assert str(runs_root / "newer") in json.loads(captured.out)["checkpoint"], argv


def test_no_run_is_one_line_saying_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HDGEN_RUNS", str(tmp_path / "none"))
    assert run(["sample", "--class", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hdgen train --preset quickstart" in err and "--ckpt" in err


def test_samples_never_overwrite_and_record_their_seed(runs_root, tmp_path, capsys):
    ckpt = str(runs_root / "older")
    args = ["sample", "--ckpt", ckpt, "--n", "3", "--steps", "2", "--json"]
    assert run(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert run(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["png"] != second["png"] and first["tensors"] != second["tensors"]
    assert isinstance(first["seed"], int)
    again = tmp_path / "again.png"
    assert run([*args, "--seed", str(first["seed"]), "--out", str(again)]) == 0
    capsys.readouterr()
    assert torch.equal(load_file(str(again.with_suffix(".safetensors")))["images"], load_file(first["tensors"])["images"])
    assert run([*args, "--out", str(again)]) == 2  # an existing --out needs --force
    assert "--force" in capsys.readouterr().err
    assert run([*args, "--out", str(again), "--force"]) == 0


def test_files_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY]) == 0
        assert run(["sample", "--ckpt", str(out), "--n", "2", "--steps", "1"]) == 0
    finally:
        os.umask(old)
    for path in out.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_failed_setup_leaves_no_runs_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HDGEN_RUNS", raising=False)
    assert run(["train", "-p", "quickstart", "data.name=cifar10", "--data-dir", str(tmp_path / "nothing")]) == 1
    assert not (tmp_path / "runs").exists()


def test_no_far_fetched_suggestion(capsys):
    assert run(["train", "-p", "quickstart", "nosuch.key=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'nosuch.key'" in err and "did you mean" not in err
    assert run(["train", "-p", "quickstart", "optim.lrr=1"]) == 2
    assert "did you mean 'optim.lr'" in capsys.readouterr().err


def test_piped_training_lines_are_never_wrapped(tmp_path, capsys):
    assert run(["train", "-p", "quickstart", "--out", str(tmp_path / "run"), *TINY]) == 0
    records = [line for line in capsys.readouterr().err.splitlines() if line.startswith("iter ")]
    assert records and all(" lr " in line and len(line) > 80 for line in records)  # one record, one line
    assert all("  ETA " in line for line in records[1:])  # from the second record on: the time left
    assert records[-1].endswith("ETA 0m00s")


def test_progress_lines_when_piped(capsys):
    with progress.reporting(every=0.0):
        with progress.stage("sample", total=3, unit="steps") as shown:
            with progress.stage("inner", total=5) as inner:  # nested: the outer loop owns the display
                inner.advance()
            for _ in range(3):
                shown.advance()
        progress.note("a note")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("sample: 1/3 steps") and "ETA" in lines[0]
    assert any(line.startswith("sample: 3/3 steps") for line in lines) and "a note" in lines
    assert not any("inner" in line for line in lines)
    with progress.reporting(quiet=True):
        with progress.stage("sample", total=2) as shown:
            shown.advance()
        progress.note("silent")
    with progress.stage("library use", total=2) as shown:  # no reporting: nothing shown
        shown.advance()
    assert capsys.readouterr().err == ""


def test_a_stage_learns_its_length(capsys):
    """Class sampling re-estimates its total as chains are kept; the last line reads k/k."""
    with progress.reporting(every=0.0):
        with progress.stage("sample class 3", total=10, unit="steps") as shown:
            shown.advance(4)
            shown.set_total(30)
            shown.advance(2)
            shown.set_total(shown.done)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("sample class 3: 4/10 steps") and lines[1].startswith("sample class 3: 6/30 steps")
    assert lines[-1].startswith("sample class 3: 6/6 steps")


def test_bpda_states_its_cost_up_front(runs_root, capsys):
    argv = ["attack", "--ckpt", str(runs_root / "older"), "--n", "4", "--steps", "1", "--defense", "sgld:steps=1",
            "--eot", "1", "--votes", "2"]
    assert run(argv) == 0
    err = capsys.readouterr().err
    assert "attack: " in err and "passes of 4 images through 1 sampler steps" in err and "at this pace" in err
    assert run([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_fid_checks_its_weights_before_sampling(runs_root, tmp_path, monkeypatch, capsys):
    from hdgen_cli.api import generation

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking the Inception weights")

    monkeypatch.setattr(generation, "sample", no_sampling)
    assert run(["evaluate", "--ckpt", str(runs_root / "older"), "--fid", "--inception-weights",
                str(tmp_path / "missing.pth")]) == 1
    assert "missing.pth" in capsys.readouterr().err
