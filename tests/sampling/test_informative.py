"""The informative Gaussian-mixture initialisation ([JEM++] eq. 14): class statistics, samples, cache."""

import pytest
import torch

from hdgen_cli.data import ImageSet, to_model_range
from hdgen_cli.sampling import build_init
from hdgen_cli.sampling.informative import RIDGE, class_statistics


def _tiny_set():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (60, 1, 2, 2), dtype=torch.uint8)
    labels = torch.arange(3).repeat(20)
    return ImageSet(images, labels, 3, "tiny", False)


def test_informative_statistics_match_a_direct_computation():
    data = _tiny_set()
    stats = class_statistics(data, "symmetric")
    x = to_model_range(data.images, "symmetric").flatten(1).double()
    for c in range(3):
        xc = x[data.labels == c]
        mu = xc.mean(0)
        cov = ((xc - mu).T @ (xc - mu)) / len(xc)  # biased, divided by N_c
        assert torch.allclose(stats["means"][c], mu) and torch.allclose(stats["covs"][c], cov)
        assert torch.allclose(stats["covs"][c], torch.cov(xc.T, correction=0))
    assert stats["counts"].tolist() == [20, 20, 20]


@pytest.mark.parametrize("lowrank", [False, True])
def test_mixture_samples_have_the_class_moments(monkeypatch, lowrank, tmp_path):
    import hdgen_cli.sampling.informative as informative

    if lowrank:
        monkeypatch.setattr(informative, "FULL_LIMIT_BYTES", 0)
    data = _tiny_set()
    data = ImageSet((data.images // 4 + 96), data.labels, 3, "tiny", False)  # keep draws away from the clamp
    init = build_init("gm", (1, 2, 2), (-1.0, 1.0), "cpu", train_set=data, cache_dir=tmp_path)
    assert init.mode == ("lowrank" if lowrank else "full")
    stats = class_statistics(data, "symmetric")
    torch.manual_seed(0)
    draws = init(20000, torch.full((20000,), 1)).flatten(1).double()
    assert torch.allclose(draws.mean(0), stats["means"][1], atol=0.01)
    assert torch.allclose(torch.cov(draws.T, correction=0), stats["covs"][1] + RIDGE * torch.eye(4), atol=0.01)
    assert draws.min() >= -1 and draws.max() <= 1
    assert bool(list(tmp_path.glob("gm-tiny-*.safetensors"))) == (not lowrank)  # only the full form is cached


def test_mixture_is_cached_and_reloaded_without_data(tmp_path):
    data = _tiny_set()
    first = build_init("gm", (1, 2, 2), (-1.0, 1.0), "cpu", train_set=data, cache_dir=tmp_path)
    again = build_init("gm", (1, 2, 2), (-1.0, 1.0), "cpu", train_set=None, cache_dir=tmp_path)
    assert torch.equal(first.means, again.means) and torch.allclose(first.chol, again.chol)
    # unconditional draws pick the class from pi = N_c / N
    assert torch.allclose(again.probs, torch.full((3,), 1 / 3))
