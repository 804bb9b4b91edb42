"""OOD detection: AUROC against scikit-learn, the generated sets, the scores, `hdgen ood` end to end."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hdgen_cli.data import ImageSet
from hdgen_cli.energy import LogitEnergy
from hdgen_cli.evaluation.ood import auroc, generated_set, match_images, score_batches


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 20, size=300).astype(float)  # small integer scores: many ties
    neg = rng.integers(-5, 15, size=200).astype(float)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[pos, neg])
    assert auroc(torch.from_numpy(pos), torch.from_numpy(neg)) == pytest.approx(expected, abs=1e-12)
    assert auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0


def test_generated_sets_have_the_reference_shape():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    for name in ("interp", "uniform", "constant"):
        x = generated_set(name, ref, 7, gen)
        assert x.shape == (7, 3, 4, 4) and x.dtype == torch.uint8
    const = generated_set("constant", ref, 5, gen)
    assert (const == const[:, :, :1, :1]).all()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    interp = generated_set("interp", ref, 3, gen)
    gen = torch.Generator().manual_seed(1)
    i, j = torch.randint(0, 10, (3,), generator=gen), torch.randint(0, 10, (3,), generator=gen)
    assert torch.equal(interp, ((ref[i].int() + ref[j].int()) // 2).to(torch.uint8))


def test_other_datasets_are_brought_to_the_model_shape():
    rgb = ImageSet(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), torch.zeros(4), 1, "x", False)
    assert match_images(rgb, 1, 8).shape == (4, 1, 8, 8)
    gray = ImageSet(torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8), torch.zeros(4), 1, "x", False)
    out = match_images(gray, 3, 8)
    assert out.shape == (4, 3, 8, 8) and torch.equal(out[:, 0], out[:, 2])


def test_scores_match_direct_computations():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    net.num_classes = 3
    model = LogitEnergy(net)
    images = torch.randint(0, 256, (5, 1, 4, 4), dtype=torch.uint8)
    x = images.float() / 255 * 2 - 1

    def log_density(inp):
        return -model.energy(inp)

    assert torch.allclose(score_batches("logpx", model, log_density, images, "symmetric"),
                          torch.logsumexp(net(x), 1).double().detach(), atol=1e-6)
    assert torch.allclose(score_batches("maxprob", model, log_density, images, "symmetric"),
                          net(x).softmax(1).max(1).values.double().detach(), atol=1e-6)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.logsumexp(net(xg), 1).sum(), xg)
    assert torch.allclose(score_batches("grad-norm", model, log_density, images, "symmetric", batch_size=2),
                          -g.flatten(1).norm(dim=1).double(), atol=1e-6)


def test_ood_cli_reports_every_pair_with_histograms(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    out = tmp_path / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY]) == 0
    capsys.readouterr()
    assert run(["ood", "--ckpt", str(out), "--n", "50", "--json", "--out-dir", str(tmp_path / "plots")]) == 0
    result = json.loads(capsys.readouterr().out)
    pairs = {(r["score"], r["ood"]) for r in result["results"]}
    assert pairs == {(s, o) for s in ("logpx", "maxprob", "grad-norm") for o in ("interp", "uniform", "constant")}
    assert all(0 <= r["auroc"] <= 1 and r["n_in"] == r["n_ood"] == 50 for r in result["results"])
    assert "in-distribution" in result["direction"] and len(list((tmp_path / "plots").glob("ood-*.png"))) == 9
    for argv, code, fragment in ((["--score", "logp"], 2, "unknown --score"), (["--ood", "noise"], 2, "did you mean"),
                                 (["--ood", "svhn", "--data-dir", str(tmp_path / "none")], 1, "--download")):
        assert run(["ood", "--ckpt", str(out), "--n", "10", *argv]) == code
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1, err
