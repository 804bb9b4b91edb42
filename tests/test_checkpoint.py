import json

import pytest
import torch
from safetensors.torch import save_file

from hdgen_cli.errors import CheckpointError
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint, load_model_state, load_optimizer_state, save_checkpoint
from hdgen_cli.parts import DataInfo, build_model
from hdgen_cli.optim import build_optimizer
from hdgen_cli.train.state import TrainingState


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from hdgen_cli.config import load_config
    from tests.conftest import TINY

    run = tmp_path_factory.mktemp("run")
    result = train(load_config("quickstart", TINY), run, quiet=True)
    return run, result


def test_round_trip_is_bitwise(trained_run, tmp_path):
    run, _ = trained_run
    ckpt = load_checkpoint(run)  # a run directory resolves to its last checkpoint
    model = build_model(ckpt.config, ckpt.info)
    load_model_state(model, ckpt)
    opt = build_optimizer(ckpt.config.optim, model.parameters())
    load_optimizer_state(opt, ckpt)
    again = save_checkpoint(tmp_path / "again.safetensors", TrainingState(model, opt).capture(12),
                            config=ckpt.config, info=ckpt.info, position=ckpt.position)
    ckpt2 = load_checkpoint(again)
    for key, value in ckpt.tensors.items():
        if key.startswith(("model.", "optim.")):
            assert torch.equal(value, ckpt2.tensors[key]), key
    assert ckpt2.config == ckpt.config and ckpt2.position == ckpt.position
    assert list(opt.param_groups[0]["betas"]) == list(ckpt.config.optim.betas)


def test_checkpoint_holds_everything_for_resume(trained_run):
    run, result = trained_run
    ckpt = load_checkpoint(run / "last.safetensors")
    sections = {k.split(".")[0] for k in ckpt.tensors}
    assert {"model", "optim", "buffer", "stream", "rng"} <= sections
    assert ckpt.position["iteration"] == result.iterations == 12
    assert ckpt.info == DataInfo(1, 8, 10, "symmetric")
    assert (run / "config.json").is_file()


def test_resume_continues_from_the_saved_iteration(trained_run, tmp_path):
    run, _ = trained_run
    ckpt = load_checkpoint(run)
    more = ckpt.config.model_copy(update={"train": ckpt.config.train.model_copy(update={"max_iters": 16})})
    result = train(more, tmp_path, resume=run / "last.safetensors", quiet=True)
    assert result.iterations == 16
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    iters = [json.loads(line).get("iter") for line in lines]
    assert 16 in iters and 4 not in iters  # logging picked up after iteration 12


def test_corrupt_missing_and_foreign_files_are_clear_errors(trained_run, tmp_path):
    run, _ = trained_run
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes((run / "last.safetensors").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an hdgen checkpoint"):
        load_checkpoint(foreign)


def test_mismatched_model_is_rejected(trained_run):
    run, _ = trained_run
    ckpt = load_checkpoint(run)
    wider = ckpt.config.model_copy(update={"model": ckpt.config.model.model_copy(update={"width": 2})})
    with pytest.raises(CheckpointError, match="expects|does not match"):
        load_model_state(build_model(wider, ckpt.info), ckpt)


def test_kept_iterations_are_written_and_leave_the_run_unchanged(tmp_path):
    """train.keep_iters writes the state at those iterations (mid-epoch too) and nothing else
    about the run moves: its last checkpoint is bitwise the same as without them."""
    from hdgen_cli.config import load_config
    from hdgen_cli.runs import kept_name
    from tests.conftest import TINY

    plain = train(load_config("quickstart", TINY), tmp_path / "plain", quiet=True)
    kept = train(load_config("quickstart", [*TINY, "train.keep_iters=[7,3]"]), tmp_path / "kept", quiet=True)
    assert [p.name for p in sorted((tmp_path / "kept").glob("iter-*"))] == [kept_name(3), kept_name(7)]
    assert load_checkpoint(tmp_path / "kept" / kept_name(7)).position["iteration"] == 7
    a, b = load_checkpoint(plain.checkpoint).tensors, load_checkpoint(kept.checkpoint).tensors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kept_gmmc_checkpoint_has_its_gamma_fitted(tmp_path):
    from hdgen_cli.config import load_config
    from hdgen_cli.runs import kept_name
    from tests.conftest import TINY

    cfg = load_config("gmmc-gen", [*TINY, "data.name=digits", "model.name=small_cnn", "sampler.buffer.size=100",
                                   "train.keep_iters=[3]"])
    train(cfg, tmp_path / "run", quiet=True)
    assert float(load_checkpoint(tmp_path / "run" / kept_name(3)).tensors["model.gamma"]) != 1.0
