"""Generation metrics: Frechet distance against closed forms and scipy, IS, Inception loading, evaluate --fid."""

import json

import numpy as np
import pytest
import torch

from hdgen_cli.errors import DataError
from hdgen_cli.evaluation.generation import (INCEPTION_FILE, InceptionFeatures, frechet_distance, gaussian_stats,
                                             inception_score, load_inception)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    v1, v2 = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 1.0, 1.0], dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * (v1 * v2).sqrt()).sum())
    assert frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, torch.diag(v1), mu1, torch.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_equals_the_scipy_sqrtm_value_on_random_features():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 16))
    b = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    mu1, s1 = gaussian_stats(torch.from_numpy(a))
    mu2, s2 = gaussian_stats(torch.from_numpy(b))
    assert torch.allclose(s1, torch.from_numpy(np.cov(a, rowvar=False)))
    covmean = linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    reference = float(((mu1 - mu2) ** 2).sum()) + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_inception_score_of_known_distributions():
    assert inception_score(torch.full((100, 10), 0.1), splits=4)[0] == pytest.approx(1.0)
    one_hot = torch.eye(10).repeat(10, 1)  # confident and spread evenly over 10 classes
    assert inception_score(one_hot, splits=5) == pytest.approx((10.0, 0.0))


def test_inception_loads_from_an_explicit_file_and_gives_pool_features(tmp_path):
    from pytorch_fid.inception import fid_inception_v3
    from unittest import mock

    with mock.patch("pytorch_fid.inception.load_state_dict_from_url", side_effect=lambda *a, **k: {}), \
            mock.patch("torch.nn.Module.load_state_dict"):
        state = fid_inception_v3().state_dict()  # random weights with the FID network's layout
    weights = tmp_path / INCEPTION_FILE
    torch.save(state, weights)
    feats, probs = InceptionFeatures(load_inception(weights))(torch.rand(2, 1, 8, 8))
    assert feats.shape == (2, 2048) and probs.shape == (2, 1008) and torch.allclose(probs.sum(1), torch.ones(2))
    with pytest.raises(DataError, match="not found"):
        load_inception(tmp_path / "missing.pth")


class _Payload:
    """Unpickling this would run code; a safe loader must refuse it."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_inception_weights_are_never_unpickled_in_full(tmp_path, capsys):
    weights = tmp_path / INCEPTION_FILE
    torch.save({"Conv2d_1a_3x3.conv.weight": _Payload()}, weights)
    with pytest.raises(DataError, match="not a tensors-only"):
        load_inception(weights)
    assert "unpickled!" not in capsys.readouterr().out
    torch.save({"other.weight": torch.zeros(2)}, weights)  # tensors, but not the Inception's
    with pytest.raises(DataError, match="does not hold the FID Inception weights"):
        load_inception(weights)


def test_evaluate_fid_with_classifier_features(tmp_path, capsys):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    jem, judge = tmp_path / "jem", tmp_path / "judge"
    assert run(["train", "-p", "quickstart", "--out", str(jem), "--quiet", *TINY]) == 0
    assert run(["train", "-p", "quickstart", "--out", str(judge), "--quiet", *TINY, "sampler.name=none",
                "objective.px_weight=0"]) == 0
    capsys.readouterr()
    assert run(["evaluate", "--ckpt", str(jem), "--fid", "--features", str(judge), "--n-samples", "30", "--steps", "2",
                "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    g = result["generation"]
    assert g["fid"] > 0 and g["inception_score"] >= 1 and g["n"] == 30 and g["steps"] == 2 and g["init"] == "noise"
    assert "accuracy" in result and all(p.endswith(".png") for p in g["grids"].values()) and len(g["grids"]) == 2
    assert run(["evaluate", "--ckpt", str(jem), "--fid", "--protocol", "buffer", "--features", str(judge), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generation"]["n"] == 200  # the whole saved buffer
    assert run(["evaluate", "--ckpt", str(jem), "--fid", "--inception-weights", str(tmp_path / "none.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert INCEPTION_FILE in err and len(err.splitlines()) == 1


def test_live_fid_is_logged_during_training(tmp_path):
    from hdgen_cli.cli.app import run
    from tests.conftest import TINY

    judge = tmp_path / "judge"
    assert run(["train", "-p", "quickstart", "--out", str(judge), "--quiet", *TINY, "sampler.name=none",
                "objective.px_weight=0"]) == 0
    out = tmp_path / "jem"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY, "train.max_iters=40", "train.fid_every=1",
                "train.fid_samples=100", f"train.fid_features={judge}"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    fids = [r["fid"] for r in rows if "fid" in r]
    assert len(fids) == 2 and all(f > 0 for f in fids)  # 40 iterations = 2 digits epochs
