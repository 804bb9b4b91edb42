"""`hdgen import` / `hdgen export`: official checkpoint layouts in and out, tensors only."""

import json
import os
import pickle
from collections import OrderedDict

import pytest
import torch

from hdgen_cli import api
from hdgen_cli.cli.app import run


def official_wrn_state(code: str, depth=10, width=1, norm=True, classes=10, seed=0) -> OrderedDict:
    """Key names and shapes as each official code's `f.state_dict()` writes them (written here from
    their model definitions: `CCF` with `f` = Wide_ResNet, `energy_output`, `class_output`)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: 0.1 * torch.randn(*shape, generator=g)  # noqa: E731 - small: finite features
    state = OrderedDict()

    def conv(name, cin, cout, k):
        state[f"{name}.weight"], state[f"{name}.bias"] = rand(cout, cin, k, k), rand(cout)

    def bn(name, c):
        if norm:
            state[f"{name}.weight"], state[f"{name}.bias"] = rand(c), rand(c)
            state[f"{name}.running_mean"], state[f"{name}.running_var"] = rand(c), rand(c).abs() + 0.5
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)

    n, widths = (depth - 4) // 6, [16, 16 * width, 32 * width, 64 * width]
    conv("f.conv1", 3, 16, 3)
    for s in range(3):
        for i in range(n):
            cin = widths[s] if i == 0 else widths[s + 1]
            p = f"f.layer{s + 1}.{i}"
            bn(f"{p}.bn1", cin)
            conv(f"{p}.conv1", cin, widths[s + 1], 3)
            bn(f"{p}.bn2", widths[s + 1])
            conv(f"{p}.conv2", widths[s + 1], widths[s + 1], 3)
            if i == 0 and (s > 0 or cin != widths[s + 1]):
                conv(f"{p}.shortcut.0", cin, widths[s + 1], 1)
    bn("f.bn1", widths[3])
    if code in ("jem", "hdge"):  # their Wide_ResNet keeps an unused classifier of its own
        state["f.linear.weight"], state["f.linear.bias"] = rand(10, widths[3]), rand(10)
    if code == "jempp":  # the YOPO WRN registers the stem and the stages a second time
        for key in [k for k in state if k.startswith("f.")]:
            if key.startswith("f.conv1."):
                state["f.layer_one." + key[8:]] = state[key]
            elif key.startswith("f.layer"):
                stage, rest = key[7:].split(".", 1)
                state[f"f.other_layers.{int(stage) - 1}.{rest}"] = state[key]
            elif key.startswith("f.bn1."):
                state["f.other_layers.3." + key[6:]] = state[key]
    if code == "gmmc":  # GMMC's F is the WRN alone; its class centres live in the LDA layer
        return state
    state["energy_output.weight"], state["energy_output.bias"] = rand(1, widths[3]), rand(1)
    state["class_output.weight"], state["class_output.bias"] = rand(classes, widths[3]), rand(classes)
    if code == "hdge":  # HYM's logit queue, registered as model buffers
        state["queue_logit"], state["queue_ptr"] = rand(classes, 40), torch.tensor([8])
    return state


def save_official(path, state, buffer=True):
    torch.save({"model_state_dict": state, "replay_buffer": torch.rand(20, 3, 32, 32) * 2 - 1 if buffer else []}, path)
    return path


def _expected(key: str) -> str:
    """Where the test expects each official tensor in hdgen's model (independent of hdgen's map)."""
    key = key.replace("f.conv1.", "backbone.stem.").replace("f.bn1.", "backbone.norm.")
    key = key.replace("class_output.", "backbone.head.").replace(".shortcut.0.", ".shortcut.")
    for s in (1, 2, 3):
        key = key.replace(f"f.layer{s}.", f"backbone.stages.{s - 1}.")
    return key.replace(".bn1.", ".norm1.").replace(".bn2.", ".norm2.")


@pytest.mark.parametrize("code,norm", [("jem", False), ("jempp", True), ("sadajem", True), ("mebm", False),
                                       ("hdge", False)])
def test_import_maps_every_tensor_and_keeps_the_buffer(tmp_path, capsys, code, norm):
    state = official_wrn_state(code, norm=norm)
    src = save_official(tmp_path / "ckpt.pt", state)
    assert run(["import", str(src), "--from", code, "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["architecture"].startswith(f"WRN-10-1, norm {'batch' if norm else 'none'}, 10 classes")
    loaded = api.load_model(tmp_path / "run", device="cpu")
    mine = loaded.model.state_dict()
    for key, value in state.items():
        if key.startswith(("energy_output.", "f.linear.", "f.layer_one.", "f.other_layers.", "queue_")):
            continue
        assert torch.equal(mine[_expected(key)], value), key
    assert set(result["dropped"]) == ({"energy_output", "f.linear"} if code in ("jem", "hdge") else {"energy_output"})
    if code == "hdge":  # the queue rides along for hdgen's HDGE objective: K x C rows, the same pointer
        assert torch.equal(loaded.checkpoint.tensors["objective.queue.logits"], state["queue_logit"].T)
        assert int(loaded.checkpoint.tensors["objective.queue.ptr"]) == 8
        assert loaded.config.objective.hdge.queue_size == 40
    saved = torch.load(src, weights_only=True)["replay_buffer"]
    assert torch.equal(loaded.checkpoint.tensors["buffer.images"], saved)
    with torch.no_grad():
        energies = loaded.model.energy(torch.rand(4, 3, 32, 32) * 2 - 1)
    assert energies.shape == (4,) and torch.isfinite(energies).all()
    # the logits are the official class_output over the features
    feats = loaded.model.backbone.features(torch.zeros(1, 3, 32, 32))
    expected = feats @ state["class_output.weight"].T + state["class_output.bias"]
    assert torch.allclose(loaded.model.scores(torch.zeros(1, 3, 32, 32)), expected, atol=1e-5)


def _save_gmmc(path, state, centres, pickled_layer: bool, labels):
    """As GMMC's `checkpoint` writes it: the LDA layer object itself under "margin" (or, re-saved, its
    state dict), and the buffer as [images, labels]."""
    import sys
    import types

    from torch import nn

    if pickled_layer:
        module = types.ModuleType("LDALayer")

        class LDALayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.feat_dim, self.num_classes = centres.shape[1], centres.shape[0]
                self.centers = nn.Parameter(centres.clone(), requires_grad=False)

        LDALayer.__module__, LDALayer.__qualname__, module.LDALayer = "LDALayer", "LDALayer", LDALayer
        sys.modules["LDALayer"] = module
        margin = LDALayer()
    else:
        margin = {"centers": centres.clone()}
    try:
        torch.save({"model_state_dict": state, "replay_buffer": [torch.rand(20, 3, 32, 32) * 2 - 1, labels],
                    "margin": margin}, path)
    finally:
        sys.modules.pop("LDALayer", None)  # the reader must not find the class: it never imports it


@pytest.mark.parametrize("pickled_layer", [True, False])
def test_gmmc_centres_come_from_its_lda_layer_without_running_it(tmp_path, capsys, pickled_layer):
    state, centres = official_wrn_state("gmmc", norm=False), torch.randn(10, 64)
    labels = torch.arange(10).repeat(2)[torch.randperm(20)]
    _save_gmmc(tmp_path / "gmmc.pt", state, centres, pickled_layer, labels)
    assert run(["import", str(tmp_path / "gmmc.pt"), "--from", "gmmc", "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    loaded = api.load_model(tmp_path / "run", device="cpu")
    mine = loaded.model.state_dict()
    assert torch.equal(mine["means"], centres) and float(mine["gamma"]) == 1.0
    assert all(torch.equal(mine[_expected(k)], v) for k, v in state.items())
    buffer = loaded.checkpoint.tensors
    assert torch.equal(buffer["buffer.labels"], torch.arange(10).repeat_interleave(2))  # sorted into class blocks
    x = torch.zeros(2, 3, 32, 32)
    with torch.no_grad():  # p(y|x) is the official softmax(-||phi(x) - mu_y||^2 / 2)
        phi = loaded.model.backbone.features(x)
        official = torch.log_softmax(-0.5 * torch.cdist(phi, centres) ** 2, dim=1)
        assert torch.allclose(torch.log_softmax(loaded.model.scores(x), 1), official, atol=1e-4)
    assert result["notes"] and "gamma = 1" in result["notes"][0]


def test_evaluation_commands_work_on_an_imported_run(tmp_path, capsys):
    """An imported run is a normal run: evaluate, calibrate, ood and report read it (on the generated
    32x32 `shapes` set, since CIFAR cannot be downloaded here)."""
    src = save_official(tmp_path / "jem.pt", official_wrn_state("jem", norm=False))
    run_dir = str(tmp_path / "run")
    assert run(["import", str(src), "--from", "jem", "--out", run_dir, "data.name=shapes"]) == 0
    capsys.readouterr()
    assert run(["evaluate", "--ckpt", run_dir, "--json", "-q"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["n"] == 2000 and evaluated["position"]["imported"]["from"] == "jem"
    assert run(["calibrate", "--ckpt", run_dir, "--json", "-q"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["ece"] <= 1
    assert run(["ood", "--ckpt", run_dir, "--score", "grad-norm", "--ood", "uniform", "--n", "40", "--json", "-q"]) == 0
    capsys.readouterr()
    assert run(["report", run_dir, "--json"]) == 0


def test_an_imported_run_samples_from_its_saved_buffer(tmp_path, capsys):
    src = save_official(tmp_path / "jem.pt", official_wrn_state("jem", norm=False))
    assert run(["import", str(src), "--from", "jem", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert run(["sample", "--ckpt", str(tmp_path / "run"), "--init", "buffer", "--steps", "1", "--n", "4", "--json",
                "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4


@pytest.mark.parametrize("code,norm", [("jem", False), ("jempp", True), ("sadajem", True)])
def test_export_then_import_is_exact_and_loads_like_the_official_file(tmp_path, code, norm):
    state = official_wrn_state(code, norm=norm)
    src = save_official(tmp_path / "ckpt.pt", state)
    api.import_checkpoint(code, src, tmp_path / "a")
    api.export_checkpoint(tmp_path / "a", code, tmp_path / "out.pt")
    written = torch.load(tmp_path / "out.pt", weights_only=True)  # tensors and plain containers only
    assert set(written) == {"model_state_dict", "replay_buffer"}
    assert set(written["model_state_dict"]) == set(state)  # the official strict load_state_dict accepts it
    for key, value in state.items():
        if not key.startswith(("energy_output.", "f.linear.")):
            assert torch.equal(written["model_state_dict"][key], value), key
    api.import_checkpoint(code, tmp_path / "out.pt", tmp_path / "b")
    a, b = api.load_model(tmp_path / "a", "cpu"), api.load_model(tmp_path / "b", "cpu")
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert torch.equal(a.checkpoint.tensors["buffer.images"], b.checkpoint.tensors["buffer.images"])


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['HDGEN_TEST_MARKER']}",))


def _one_line_error(capsys, argv, code=1):
    assert run(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_files_get_one_line_and_nothing_runs(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("HDGEN_TEST_MARKER", str(marker))
    hostile = tmp_path / "hostile.pt"
    torch.save({"model_state_dict": {"x": torch.zeros(1)}, "payload": _Boom()}, hostile)
    err = _one_line_error(capsys, ["import", str(hostile), "--from", "jem", "--out", str(tmp_path / "r1")])
    assert "other than tensors" in err and not marker.exists() and not (tmp_path / "r1").exists()
    torch.save({"model_state_dict": {}, "margin": _Boom()}, hostile)  # GMMC's reader allows one class name only
    _one_line_error(capsys, ["import", str(hostile), "--from", "gmmc", "--out", str(tmp_path / "r1")])
    assert not marker.exists()
    with open(tmp_path / "raw.pkl", "wb") as fh:  # a plain pickle, not a torch.save zip
        pickle.dump(_Boom(), fh)
    _one_line_error(capsys, ["import", str(tmp_path / "raw.pkl"), "--from", "jem", "--out", str(tmp_path / "r2")])
    assert not marker.exists()

    good = save_official(tmp_path / "good.pt", official_wrn_state("jem", norm=False))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    assert "truncated or corrupt" in _one_line_error(capsys, ["import", str(truncated), "--from", "jem", "--out",
                                                               str(tmp_path / "r3")])
    clel_like = tmp_path / "clel.pt"
    torch.save({"ebm": {"net.0.weight": torch.zeros(2)}, "encoder": {}}, clel_like)
    assert "not a checkpoint of that code" in _one_line_error(  # a wrong --from: usage, exit 2
        capsys, ["import", str(clel_like), "--from", "jem", "--out", str(tmp_path / "r4")], code=2)
    odd = tmp_path / "odd.pt"
    state = official_wrn_state("jem", norm=False)
    state["f.mystery.weight"] = torch.zeros(3)
    save_official(odd, state)
    assert "unexpected keys ['f.mystery.weight']" in _one_line_error(
        capsys, ["import", str(odd), "--from", "jem", "--out", str(tmp_path / "r5")], code=2)
    hdge_file = save_official(tmp_path / "hdge.pt", official_wrn_state("hdge", norm=False))
    assert "use --from hdge" in _one_line_error(
        capsys, ["import", str(hdge_file), "--from", "jem", "--out", str(tmp_path / "r5")], code=2)
    assert "does not match" in _one_line_error(  # an override that changes the architecture
        capsys, ["import", str(good), "--from", "jem", "--out", str(tmp_path / "r5"), "model.width=2"], code=2)
    assert "unknown --from 'jemm'; did you mean 'jem'?" in _one_line_error(
        capsys, ["import", str(good), "--from", "jemm", "--out", str(tmp_path / "r6")], code=2)
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 7))
    api.import_checkpoint("jem", good, tmp_path / "ok")
    assert "unknown --to 'gmmc'" in _one_line_error(
        capsys, ["export", str(tmp_path / "x.pt"), "--to", "gmmc", "--ckpt", str(tmp_path / "ok")], code=2)
    assert "already holds a run" in _one_line_error(
        capsys, ["import", str(good), "--from", "jem", "--out", str(tmp_path / "ok")], code=2)
    assert not (tmp_path / "x.pt").exists()


def official_clel_state(c=16, enc=16, seed=0) -> OrderedDict:
    """The official JointModel's state dict for the small EBM (stages (c,1), (c,1), (2c,1), (2c,1)) and
    a ResNet-18 encoder of base width `enc`, as `model.state_dict()` names them (scaled down)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: 0.1 * torch.randn(*shape, generator=g)  # noqa: E731
    state = OrderedDict()

    def sn_conv(name, cin, cout, k, bias=True):
        if bias:
            state[f"{name}.bias"] = rand(cout)
        state[f"{name}.parametrizations.weight.original"] = rand(cout, cin, k, k)
        state[f"{name}.parametrizations.weight.0._u"], state[f"{name}.parametrizations.weight.0._v"] = \
            rand(cout), rand(cin * k * k)

    for net in ("ebm", "ema_ebm"):
        state[f"{net}.stem.0.mean"], state[f"{net}.stem.0.std"] = torch.tensor([.49, .48, .45]), torch.tensor([.25] * 3)
        sn_conv(f"{net}.stem.1", 3, c, 3)
        cin = c
        for i, cout in enumerate((c, c, 2 * c, 2 * c)):
            j = 1 if i > 0 else 0  # stage i > 0 starts with its AvgPool
            sn_conv(f"{net}.stages.{i}.{j}.conv1", cin, cout, 3)
            sn_conv(f"{net}.stages.{i}.{j}.conv2", cout, cout, 3)
            if cin != cout:
                sn_conv(f"{net}.stages.{i}.{j}.shortcut", cin, cout, 1, bias=False)
            cin = cout
        state[f"{net}.head.0.weight"], state[f"{net}.head.0.bias"] = rand(2048, cin), rand(2048)
        state[f"{net}.head.2.weight"], state[f"{net}.head.2.bias"] = rand(128, 2048), rand(128)
        state[f"{net}.projection.0.weight"], state[f"{net}.projection.2.weight"] = rand(2048, 128), rand(128, 2048)

    def bn(name, ch):
        state[f"{name}.weight"], state[f"{name}.bias"] = rand(ch) + 1, rand(ch)
        state[f"{name}.running_mean"], state[f"{name}.running_var"] = rand(ch), rand(ch).abs() + 0.5
        state[f"{name}.num_batches_tracked"] = torch.tensor(3)

    for net in ("encoder", "ema_encoder"):
        state[f"{net}.conv1.0.mean"], state[f"{net}.conv1.0.std"] = torch.tensor([.49, .48, .45]), torch.tensor([.25] * 3)
        state[f"{net}.conv1.1.weight"] = rand(enc, 3, 3, 3)
        bn(f"{net}.bn1", enc)
        cin = enc
        for layer, cout in enumerate((enc, 2 * enc, 4 * enc, 8 * enc), start=1):
            for b in range(2):
                p = f"{net}.layer{layer}.{b}"
                state[f"{p}.conv1.weight"] = rand(cout, cin if b == 0 else cout, 3, 3)
                bn(f"{p}.bn1", cout)
                state[f"{p}.conv2.weight"] = rand(cout, cout, 3, 3)
                bn(f"{p}.bn2", cout)
                if b == 0 and cin != cout:
                    state[f"{p}.downsample.0.weight"] = rand(cout, cin, 1, 1)
                    bn(f"{p}.downsample.1", cout)
            cin = cout
        state[f"{net}.fc.0.weight"] = rand(2048, cin)
        bn(f"{net}.fc.1", 2048)
        state[f"{net}.fc.3.weight"], state[f"{net}.fc.3.bias"] = rand(128, 2048), rand(128)
    state["sampler.memory"] = torch.rand(20, 3, 32, 32)
    return state


def test_clel_networks_and_memory_come_across(tmp_path, capsys):
    state = official_clel_state()
    adam = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.0, 0.999), "params": [0, 1]}]}
    torch.save({"model": state, "optimizers": [adam], "schedulers": [{"last_epoch": 3, "lr_lambdas": [None]}],
                "engine": {"iteration": 3, "fid": (30.0, 25.0)}}, tmp_path / "best.ckpt")
    assert run(["import", str(tmp_path / "best.ckpt"), "--from", "clel", "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["preset"] == "clel-small" and result["buffer"] == 20
    online = api.load_model(tmp_path / "run", "cpu", ema=False).model.state_dict()
    averaged = api.load_model(tmp_path / "run", "cpu").model.state_dict()  # evaluation reads the EMA twin
    assert torch.equal(online["backbone.towers.0.body.6.conv2.parametrizations.weight.original"],
                       state["ebm.stages.3.1.conv2.parametrizations.weight.original"])
    assert torch.equal(averaged["projector.net.2.weight"], state["ema_ebm.projection.2.weight"])
    assert torch.equal(online["backbone.normalize.mean"].flatten(), state["ebm.stem.0.mean"])
    loaded = api.load_model(tmp_path / "run", "cpu")
    encoder = api.load_encoder(loaded, "cpu").state_dict()
    assert torch.equal(encoder["layers.1.0.shortcut.1.running_var"], state["ema_encoder.layer2.0.downsample.1.running_var"])
    assert torch.equal(encoder["mlp.3.bias"], state["ema_encoder.fc.3.bias"])
    assert torch.equal(loaded.checkpoint.tensors["buffer.images"], state["sampler.memory"])
    with torch.no_grad():
        assert torch.isfinite(loaded.model.energy(torch.rand(2, 3, 32, 32))).all()
