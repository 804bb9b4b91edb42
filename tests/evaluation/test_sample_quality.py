"""The pixel-space sample checks: closed forms and real digits as the control."""

import pytest
import torch

from hdgen_cli.evaluation.sample_quality import fit_judge, nearest_distance, sample_quality


def test_nearest_distance_closed_form():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    assert nearest_distance(a, b).tolist() == pytest.approx([2.0, 13 ** 0.5, 1.0])
    assert nearest_distance(a).tolist() == pytest.approx([1.0, 18 ** 0.5, 1.0])  # itself excluded


@pytest.fixture(scope="module")
def digits():
    from hdgen_cli.config import load_config
    from hdgen_cli.data import make_splits

    splits = make_splits(load_config("quickstart").data)
    train, test = splits.train, splits.test
    return (train.images.float() / 255, train.labels, test.images.float() / 255, test.labels)


def test_real_digits_score_as_real(digits):
    tr, ytr, te, yte = digits
    judge = fit_judge(tr, ytr)
    threes = te[yte == 3]
    q = sample_quality(threes, tr, threes, judge, klass=3)
    assert q["realism"] == pytest.approx(1.0) and q["diversity"] == pytest.approx(1.0)
    assert q["judged"] >= 0.85  # the bar the samples must meet is one real 3s meet
    u = sample_quality(te[:64], tr, te, judge)
    assert u["classes"] == 10
    # Size-matched: 64 random training digits against the 359 test digits (unmatched, their
    # spread reads 1.3), and 64 training 3s against the 31 test 3s, are as diverse as real digits.
    pick = torch.randperm(len(tr), generator=torch.Generator().manual_seed(0))[:64]
    assert 0.85 < sample_quality(tr[pick], tr, te, judge)["diversity"] < 1.15
    assert 0.85 < sample_quality(tr[ytr == 3][:64], tr, threes, judge, klass=3)["diversity"] < 1.15


def test_spread_uses_subsets_of_the_smaller_size():
    from hdgen_cli.evaluation.sample_quality import spread

    line = torch.arange(8.0).view(8, 1)  # neighbours 1 apart; any 2 of them are 1 to 7 apart
    assert spread(line, 8) == 1.0 and spread(line, 20) == 1.0
    assert spread(line, 2) > 1.0


def test_copies_noise_and_saturation_fail(digits):
    tr, ytr, te, yte = digits
    judge = fit_judge(tr, ytr)
    threes = te[yte == 3]
    copies = threes[:1].repeat(64, 1, 1, 1)
    assert sample_quality(copies, tr, threes, judge, klass=3)["diversity"] == pytest.approx(0.0, abs=1e-6)  # copies
    noise = torch.rand(64, *tr.shape[1:], generator=torch.Generator().manual_seed(0))
    q = sample_quality(noise, tr, threes, judge, klass=3)
    assert q["realism"] > 1.5 and q["judged"] < 0.2  # noise is diverse, but far from every digit
    salt = (noise > 0.5).float()  # the saturated texture of collapsed chains
    assert sample_quality(salt, tr, threes, judge, klass=3)["realism"] > 1.5
