"""Crash-safe checkpoints and exact resume: a SIGKILL mid-write leaves the previous
checkpoint loadable; a run killed and resumed ends bitwise where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from hdgen_cli.config import load_config
from hdgen_cli.files import unfinished_writes, write_atomically
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint
from tests.conftest import TINY
from tests.methods.test_clel import TINY_CLEL
from tests.methods.test_gmmc import DIGITS as GMMC_DIGITS
from tests.methods.test_hdge import DIGITS as HDGE_DIGITS
from tests.methods.test_sada_jem import TINY_BN

ROOT = Path(__file__).resolve().parents[2]  # the repository
# 50 iterations on digits at 22 per epoch: checkpoints at iterations 22, 44 and 50.
RUN = ["-p", "quickstart", "--quiet", *TINY, "train.max_iters=50"]
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}


def _hdgen(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hdgen_cli", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before {path.name} appeared: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.01)


def _state(run_dir: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(run_dir).tensors.items()}


def _assert_bitwise(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ after resume: {different[:5]}"


# A child that writes its second checkpoint half way, says so, and waits to be killed.
SLOW_WRITE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import hdgen_cli.checkpoint as ckpt
    real, calls, marker = ckpt.save_file, [], Path(sys.argv[1])
    def half_then_hang(tensors, filename, metadata=None):
        calls.append(filename)
        real(tensors, filename, metadata=metadata)
        if len(calls) == 2:
            data = Path(filename).read_bytes()
            Path(filename).write_bytes(data[: len(data) // 2])
            marker.touch()
            time.sleep(600)
    ckpt.save_file = half_then_hang
    from hdgen_cli.cli.app import main
    sys.argv = ["hdgen", *sys.argv[2:]]
    main()
""")


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    run_dir, mid_write = tmp_path / "run", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(mid_write), "train", *RUN, "--out", str(run_dir)],
                            env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(mid_write, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir).position["iteration"] == 22  # the first checkpoint, intact
    assert [p.name for p in unfinished_writes(run_dir)] == [f".last.safetensors.tmp-{proc.pid}"]
    resumed = _hdgen("train", "--resume", str(run_dir), "--quiet")
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert load_checkpoint(run_dir).position["iteration"] == 50 and not unfinished_writes(run_dir)
    assert "removed 1 unfinished write" in (run_dir / "metrics.jsonl").read_text()


def test_a_run_killed_and_resumed_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path):
    straight = _hdgen("train", *RUN, "--out", str(tmp_path / "straight"))
    killed = _hdgen("train", *RUN, "--out", str(tmp_path / "killed"))
    try:
        _wait_for(tmp_path / "killed" / "last.safetensors", killed)
    finally:
        killed.send_signal(signal.SIGKILL)  # wherever it is: between checkpoints, or writing one
        killed.wait()
    stopped_at = load_checkpoint(tmp_path / "killed").position["iteration"]
    assert stopped_at < 50, "the run finished before it was killed; nothing was tested"
    resumed = _hdgen("train", "--resume", str(tmp_path / "killed"), "--quiet")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    assert straight.wait(timeout=240) == 0, straight.stderr.read()
    _assert_bitwise(_state(tmp_path / "straight"), _state(tmp_path / "killed"))


@pytest.mark.parametrize("preset, overrides", [
    ("sada-jem-k5", TINY_BN + ["sampler.steps=2"]),  # SAM, BatchNorm, GM-initialised buffer
    ("hdge-jem", HDGE_DIGITS),                        # the logit queue
    ("gmmc-joint", GMMC_DIGITS),                      # the MMC head's calibration
    ("clel-small", TINY_CLEL),                        # the encoder, its optimizer, the EMA copies, cosine lr
])
def test_resume_is_exact_for_every_kind_of_state(preset, overrides, tmp_path, monkeypatch):
    """Interrupted right after the mid-run checkpoint at iteration 3 of 6, resumed, and compared with
    an uninterrupted run of the same config (so schedules that depend on the length agree)."""
    from hdgen_cli.train import epoch_end

    cfg = load_config(preset, overrides + ["train.max_iters=6", "train.ckpt_every_iters=3"])
    real = epoch_end.save_checkpoint

    def save_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # as if killed the moment the checkpoint landed

    monkeypatch.setattr(epoch_end, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "a", quiet=True)
    monkeypatch.setattr(epoch_end, "save_checkpoint", real)
    assert load_checkpoint(tmp_path / "a").position["iteration"] == 3
    train(cfg, tmp_path / "a", resume=tmp_path / "a", quiet=True)
    train(cfg, tmp_path / "b", quiet=True)
    _assert_bitwise(_state(tmp_path / "a"), _state(tmp_path / "b"))


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def broken(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, broken)
    assert target.read_text() == "old" and not unfinished_writes(tmp_path)
    write_atomically(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"
