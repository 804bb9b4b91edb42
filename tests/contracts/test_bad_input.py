"""Bad input everywhere: each row is one wrong command line. Every one must end with
one line on stderr naming the problem, exit code 2 (usage) or 1 (runtime), no traceback, and
nothing the user had is changed."""

import hashlib
import pickle

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from hdgen_cli.cli.app import run
from hdgen_cli.errors import UsageError
from tests.conftest import TINY

# (argv, exit code, a fragment of the message). {run}: a trained quickstart run; {tmp}: a fresh
# directory; {file}: a plain file; {corrupt}, {foreign}, {pickle}: bad checkpoint files;
# {empty}: an empty folder; {rgb}: 16x16 colour images; {oblong}: a non-square image.
TRAIN = ["train", "-p", "quickstart", "--quiet", "--out", "{tmp}/new"]
CASES = [
    # presets and overrides
    (["train", "-p", "jemm"], 2, "did you mean 'jem'"),
    (["train", "-p", "../quickstart"], 2, "unknown preset"),
    ([*TRAIN, "optim.lrr=1e-4"], 2, "did you mean 'optim.lr'"),
    ([*TRAIN, "sampler.steps=-1"], 2, "sampler.steps"),
    ([*TRAIN, "sampler.steps=ten"], 2, "sampler.steps"),
    ([*TRAIN, "sampler.steps=2.5"], 2, "sampler.steps"),
    ([*TRAIN, "optim.lr=nan"], 2, "optim.lr"),
    ([*TRAIN, "optim.lr=inf"], 2, "optim.lr"),
    ([*TRAIN, "optim.lr=-1e-3"], 2, "optim.lr"),
    ([*TRAIN, "optim.lr"], 2, "not key=value"),
    ([*TRAIN, "=3"], 2, "unknown config key"),
    ([*TRAIN, "train.epochs=0"], 2, "train.epochs"),
    ([*TRAIN, "train.max_iters=-5"], 2, "train.max_iters"),
    ([*TRAIN, "sampler.name=hmc"], 2, "sampler.name"),
    ([*TRAIN, "sampler.buffer.reinit=1.5"], 2, "sampler.buffer.reinit"),
    ([*TRAIN, "sampler.buffer.size=15"], 2, "multiple of the 10 classes"),
    ([*TRAIN, "sampler.buffer.init=gauss"], 2, "sampler.buffer.init"),
    ([*TRAIN, "model.name=resnet999"], 2, "unknown model 'resnet999'"),
    ([*TRAIN, "energy.name=free"], 2, "unknown energy"),
    ([*TRAIN, "data.name=mnist2"], 2, "did you mean 'mnist'"),
    ([*TRAIN, "data.pixel_range=weird"], 2, "data.pixel_range"),
    ([*TRAIN, "data.px.batch_size=0"], 2, "data.px.batch_size"),
    ([*TRAIN, "data.px.batch_size=5000"], 1, "fewer than batch size"),
    ([*TRAIN, "train.guard.remedies=pray"], 2, "train.guard.remedies"),
    ([*TRAIN, "train.guard.lr_factor=2"], 2, "train.guard.lr_factor"),
    ([*TRAIN, "train.divergence_threshold=1e5"], 2, "train.guard.loss_limit"),
    ([*TRAIN, "train.device=tpu"], 2, "unknown device"),
    ([*TRAIN, "--device", "cuda:7"], 2, "no CUDA GPU" if not torch.cuda.is_available() else "cuda"),
    ([*TRAIN, "objective.name=hdge"], 2, "objective.name"),
    ([*TRAIN, "--on-divergence", "panic"], 2, "train.guard.on_divergence"),
    (["presets", "show", "softmaks"], 2, "did you mean 'softmax'"),
    (["presets", "show", "jem", "sampler.steps=abc"], 2, "sampler.steps"),
    (["presets", "frobnicate"], 2, "No such command"),
    (["frobnicate"], 2, "No such command"),
    (["train", "--bogus"], 2, "No such option"),
    # run directories
    (["train", "-p", "quickstart", "--out", "{run}"], 2, "--force"),
    (["train", "-p", "quickstart", "--out", "{file}"], 2, "is a file"),
    (["train", "-p", "quickstart", "--out", "{file}/sub"], 2, "cannot write"),
    # data
    ([*TRAIN, "data.name=cifar10", "--data-dir", "{tmp}/nothing"], 1, "--download"),
    ([*TRAIN, "data.name=folder", "--data-dir", "{empty}"], 1, "no images"),
    ([*TRAIN, "data.name=folder", "--data-dir", "{oblong}"], 1, "not square"),
    # checkpoints
    (["train", "--resume", "{tmp}/none.safetensors"], 1, "not found"),
    (["train", "--resume", "{corrupt}"], 1, "corrupt"),
    (["train", "--resume", "{foreign}"], 1, "not an hdgen checkpoint"),
    (["train", "--resume", "{pickle}"], 1, "not a readable hdgen checkpoint"),
    (["train", "--resume", "{empty}"], 1, "not found"),
    (["train", "--resume", "{run}", "-p", "jem"], 2, "drop --preset"),
    (["train", "--resume", "{run}", "model.width=3"], 2, "model.width: 1 -> 3"),
    (["train", "--resume", "{run}", "sampler.buffer.size=300", "data.n_valid=10"], 2,
     "data.n_valid: 0 -> 10; sampler.buffer.size: 200 -> 300"),
    (["sample", "--ckpt", "{tmp}/none"], 1, "not found"),
    (["sample", "--ckpt", "{corrupt}"], 1, "corrupt"),
    (["sample", "--ckpt", "{pickle}"], 1, "not a readable hdgen checkpoint"),
    (["evaluate", "--ckpt", "{foreign}"], 1, "not an hdgen checkpoint"),
    (["calibrate", "--ckpt", "{empty}"], 1, "not found"),
    (["ood", "--ckpt", "{corrupt}"], 1, "corrupt"),
    (["attack", "--ckpt", "{pickle}"], 1, "not a readable hdgen checkpoint"),
    (["evaluate", "--ckpt", "{run}", "--fid", "--features", "{corrupt}"], 1, "corrupt"),
    (["evaluate", "--ckpt", "{run}", "--fid", "--inception-weights", "{tmp}/none.pth"], 1, "not found"),
    # command options
    (["sample", "--ckpt", "{run}", "--class", "12"], 2, "0..9"),
    (["sample", "--ckpt", "{run}", "--class", "-1"], 2, "--class"),
    (["sample", "--ckpt", "{run}", "--steps", "-3"], 2, "--steps"),
    (["sample", "--ckpt", "{run}", "--n", "0"], 2, "--n"),
    (["sample", "--ckpt", "{run}", "--init", "magic"], 2, "--init"),
    (["sample", "--ckpt", "{run}", "--class", "3", "--conditional", "magic"], 2, "--conditional"),
    (["sample", "--ckpt", "{run}", "--conditional", "filter"], 2, "needs --class"),
    (["sample", "--ckpt", "{run}", "--n", "2", "--steps", "1", "--out", "{file}"], 2, "--force"),
    ([*TRAIN, "nosuch.key=1"], 2, "unknown config key 'nosuch.key'"),
    (["sample", "--ckpt", "{run}", "--like", "{rgb}"], 2, "--like"),
    (["sample", "--ckpt", "{run}", "--n", "2", "--steps", "1", "--out", "{file}/x.png"], 2, "cannot write"),
    (["calibrate", "--ckpt", "{run}", "--out", "{file}/x.png"], 2, "cannot write"),
    (["ood", "--ckpt", "{run}", "--out-dir", "{file}/plots"], 2, "cannot write"),
    (["attack", "--ckpt", "{run}", "--out", "{file}/x.png"], 2, "cannot write"),
    (["evaluate", "--ckpt", "{run}", "--split", "train"], 2, "--split"),
    (["evaluate", "--ckpt", "{run}", "--split", "valid"], 2, "no validation split"),
    (["evaluate", "--ckpt", "{run}", "--sigma", "-1"], 2, "--sigma"),
    (["evaluate", "--ckpt", "{run}", "--fid", "--protocol", "best"], 2, "--protocol"),
    (["calibrate", "--ckpt", "{run}", "--bins", "0"], 2, "--bins"),
    (["calibrate", "--ckpt", "{run}", "--split", "nope"], 2, "--split"),
    (["attack", "--ckpt", "{run}", "--attack", "fgsm"], 2, "fgsm"),
    (["attack", "--ckpt", "{run}", "--eps", "abc"], 2, "--eps"),
    (["attack", "--ckpt", "{run}", "--eps", "-0.1"], 2, "--eps"),
    (["attack", "--ckpt", "{run}", "--defense", "sgld:steps=x"], 2, "--defense"),
    (["attack", "--ckpt", "{run}", "--steps", "0"], 2, "--steps"),
    (["ood", "--ckpt", "{run}", "--score", "nonsense"], 2, "nonsense"),
    (["ood", "--ckpt", "{run}", "--ood", "svhn", "--data-dir", "{tmp}/nothing"], 1, "--download"),
    (["ood", "--ckpt", "{run}", "--ood", "{empty}"], 1, "no images"),
    (["ood", "--ckpt", "{run}", "--beta-ood", "-1"], 2, "--beta-ood"),
    (["report", "{empty}"], 2, "not an hdgen run directory"),
    (["report", "{run}", "--format", "pdf"], 2, "--format"),
    (["report", "{run}", "{run}"], 2, "named twice"),
    (["report", "{run}", "--out", "{file}/r.html"], 2, "cannot write"),
]


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    run_dir = root / "run"
    assert run(["train", "-p", "quickstart", "--out", str(run_dir), "--quiet", *TINY]) == 0
    (root / "file").write_text("not a directory")
    corrupt = root / "corrupt.safetensors"
    corrupt.write_bytes((run_dir / "last.safetensors").read_bytes()[:5000])
    save_file({"w": torch.zeros(2)}, str(root / "foreign.safetensors"))
    with open(root / "model.pt", "wb") as fh:  # a pickle: hdgen must never unpickle it
        pickle.dump({"model": [1, 2, 3]}, fh)
    (root / "empty").mkdir()
    for name, size in (("rgb", (16, 16)), ("oblong", (16, 12))):
        (root / name / "a").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", size, (40 * i, 90, 200)).save(root / name / "a" / f"{i}.png")
    return {"run": run_dir, "file": root / "file", "corrupt": corrupt, "foreign": root / "foreign.safetensors",
            "pickle": root / "model.pt", "empty": root / "empty", "rgb": root / "rgb", "oblong": root / "oblong"}


def test_there_are_at_least_fifty_cases():
    assert len(CASES) >= 50


@pytest.mark.parametrize("argv, code, fragment", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_clear_line(argv, code, fragment, places, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HDGEN_DEBUG", raising=False)
    where = {**{k: str(v) for k, v in places.items()}, "tmp": str(tmp_path)}
    before = _digest(places["run"].parent)
    capsys.readouterr()
    assert run([a.format(**where) for a in argv]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("hdgen: error: ") and fragment in err, err
    assert _digest(places["run"].parent) == before  # nothing the user had was changed
    assert not (tmp_path / "new").exists()  # a run that failed to start leaves no directory


def test_hdgen_debug_shows_the_traceback(places, monkeypatch):
    monkeypatch.setenv("HDGEN_DEBUG", "1")
    from hdgen_cli.errors import CheckpointError

    with pytest.raises(CheckpointError):
        run(["sample", "--ckpt", str(places["corrupt"])])


def test_every_setting_fixed_on_resume_exists():
    from hdgen_cli.api.training import FIXED_ON_RESUME
    from hdgen_cli.config.presets import valid_keys

    keys = valid_keys()
    assert all(any(k.startswith(p) for k in keys) if p.endswith(".") else p in keys for p in FIXED_ON_RESUME)


def test_the_python_api_refuses_what_the_command_line_refuses(places, tmp_path):
    """api.train makes the CLI's checks itself: a resume that changes a tensor-shaping setting, a
    non-empty folder without force, and a failed set-up leaves no folder."""
    from hdgen_cli import api
    from hdgen_cli.checkpoint import load_checkpoint
    from hdgen_cli.errors import DataError

    saved = load_checkpoint(places["run"]).config
    wider = api.override_config(saved, ["model.width=2"])
    before = _digest(places["run"].parent)
    with pytest.raises(UsageError, match="cannot change what last.safetensors was trained with .*model.width"):
        api.train(wider, resume=places["run"], quiet=True)
    with pytest.raises(UsageError, match="already exists and is not empty; pass --force"):
        api.train(saved, places["run"], quiet=True)
    missing = api.load_config("quickstart", ["data.name=cifar10", f"data.data_dir={tmp_path / 'nothing'}"])
    with pytest.raises(DataError):
        api.train(missing, tmp_path / "new" / "run", quiet=True)
    assert not (tmp_path / "new").exists() and _digest(places["run"].parent) == before


@pytest.mark.parametrize("key, value, fragment", [("model", "resnet999", "unknown model 'resnet999'"),
                                                  ("sampler", "hmc", "unknown sampler 'hmc'"),
                                                  ("objective", "vae", "unknown objective 'vae'")])
def test_a_checkpoint_naming_an_unknown_part_is_one_line_before_any_work(key, value, fragment, places, tmp_path, capsys):
    from hdgen_cli.checkpoint import load_checkpoint, save_checkpoint

    saved = load_checkpoint(places["run"])
    part = getattr(saved.config, key).model_copy(update={"name": value})
    bad = tmp_path / "bad" / "last.safetensors"
    bad.parent.mkdir()
    save_checkpoint(bad, saved.captured(), config=saved.config.model_copy(update={key: part}), info=saved.info,
                    position=saved.position)
    before = _digest(bad.parent)
    for argv in (["sample", "--ckpt", str(bad)], ["evaluate", "--ckpt", str(bad)], ["train", "--resume", str(bad.parent)]):
        capsys.readouterr()
        assert run(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "names a part this hdgen does not have" in err and fragment in err, err
    assert _digest(bad.parent) == before
