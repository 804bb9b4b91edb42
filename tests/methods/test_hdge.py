"""HDGE: the contrastive log q(x|y) term against a direct computation, the queue, the variants, resume."""

import math

import pytest
import torch
import torch.nn.functional as F

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, make_splits
from hdgen_cli.objectives.hdge import LogitQueue, contrastive_log_qxy
from hdgen_cli.optim import build_optimizer
from hdgen_cli.parts import build_run
from hdgen_cli.train import train
from hdgen_cli.checkpoint import load_checkpoint
from tests.conftest import TINY

DIGITS = TINY + ["data.name=digits", "model.name=small_cnn", "optim.lr=1e-3", "objective.hdge.queue_size=100"]


def direct_loss(logits, y, negatives, T, onehot=False):
    """Eq. 15's contrastive term written out with exp and log, one example at a time."""
    C = logits.shape[1]
    form = (lambda v: math.log(math.exp(v) + C - 1)) if onehot else (lambda v: v)
    total = 0.0
    for b in range(len(y)):
        s = logits[b] / logits[b].norm()
        pos = math.exp(form(float(s[y[b]])) / T)
        neg = sum(math.exp(form(float(n[y[b]] / n.norm())) / T) for n in negatives(b))
        total += -math.log(pos / (pos + neg))
    return total / len(y)


@pytest.mark.parametrize("onehot", [False, True])
def test_queue_loss_equals_a_direct_computation(onehot):
    logits, y, queue = torch.randn(3, 4), torch.tensor([0, 2, 2]), torch.randn(5, 4)
    got = contrastive_log_qxy(logits, y, queue, 0.1, "lse-onehot" if onehot else "eq15")
    want = direct_loss(logits, y, lambda b: list(queue), 0.1, onehot)
    assert math.isclose(float(got), want, rel_tol=1e-5)


def test_in_batch_variant_contrasts_the_other_examples():
    logits, y = torch.randn(4, 3), torch.tensor([1, 0, 1, 2])
    got = contrastive_log_qxy(logits, y, None, 0.2)
    want = direct_loss(logits, y, lambda b: [logits[j] for j in range(4) if j != b], 0.2)
    assert math.isclose(float(got), want, rel_tol=1e-5)


def test_queue_fills_in_order_and_wraps_around():
    q = LogitQueue(5, 2)
    a, b = torch.arange(6.0).view(3, 2), 10 + torch.arange(6.0).view(3, 2)
    q.push(a)
    assert torch.equal(q.logits[:3], a) and int(q.ptr) == 3
    q.push(b)  # two rows at the end, the third wraps to the front
    assert torch.equal(q.logits, torch.stack([b[2], a[1], a[2], b[0], b[1]])) and int(q.ptr) == 1
    # the loss over the wrapped queue is the loss over its current rows
    logits, y = torch.randn(2, 2), torch.tensor([0, 1])
    want = direct_loss(logits, y, lambda _: list(q.logits), 0.1)
    assert math.isclose(float(contrastive_log_qxy(logits, y, q.logits, 0.1)), want, rel_tol=1e-5)
    q.push(torch.arange(14.0).view(7, 2))  # more rows than the queue keeps only the newest 5
    assert sorted(q.logits[:, 0].tolist()) == [4.0, 6.0, 8.0, 10.0, 12.0]


def _parts(*overrides, preset="hdge"):
    cfg = load_config(preset, DIGITS + list(overrides))
    data = make_splits(cfg.data).train
    run = build_run(cfg, "cpu", data)
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    return cfg, run.model, run.objective, plain(data.images[:64]), data.labels[:64], plain(data.images[64:128])


def test_alpha_one_is_exactly_cross_entropy():
    _, model, objective, x, y, _ = _parts("objective.hdge_weight=0")
    out = objective(model, x, y, None)
    assert torch.equal(out.loss, F.cross_entropy(model(x), y)) and objective.queue is None


def test_one_forward_pass_serves_ce_and_the_contrastive_term():
    _, model, objective, x, y, _ = _parts()
    calls = []
    model.backbone.register_forward_hook(lambda *_: calls.append(1))
    out = objective(model, x, y, None)
    assert len(calls) == 1 and set(out.terms) == {"ce", "hdge"}


def test_queue_is_updated_after_the_step_in_training_only():
    _, model, objective, x, y, _ = _parts()
    before = objective.queue.logits.clone()
    model.eval()
    objective(model, x, y, None)
    objective.after_step()
    assert torch.equal(objective.queue.logits, before)
    model.train()
    out = objective(model, x, y, None)
    assert torch.equal(objective.queue.logits, before)  # not during the loss
    objective.after_step()
    assert torch.equal(objective.queue.logits[:64], model(x).detach()) and int(objective.queue.ptr) == 64
    assert torch.isfinite(out.loss)


def test_in_batch_variant_needs_no_queue():
    _, model, objective, x, y, _ = _parts("objective.hdge.negatives=batch")
    out = objective(model, x, y, None)
    objective.after_step()
    assert objective.queue is None and objective.state_dict() == {} and torch.isfinite(out.terms["hdge"])


@pytest.mark.parametrize("preset", ["hdge", "hdge-jem"])
def test_few_hdge_steps_lower_the_loss_with_finite_energies(preset):
    cfg, model, objective, x, y, x_data = _parts("model.width=2", preset=preset)
    opt = build_optimizer(cfg.optim, model.parameters())
    con = []
    for _ in range(25):
        out = objective(model, x, y, x_data)
        assert torch.isfinite(out.loss) and torch.isfinite(model.energy(x)).all()
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        objective.after_step()
        con.append(out.terms["hdge"].item())
    assert sum(con[-5:]) / 5 < sum(con[:5]) / 5 - 0.1
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert ("px" in out.terms) == (preset == "hdge-jem")


def test_checkpoints_restore_the_queue_exactly(tmp_path):
    cfg = load_config("hdge", DIGITS + ["train.max_iters=3"])
    train(cfg, tmp_path / "a", quiet=True)  # 3 x 64 rows through a 100-row queue: it has wrapped
    saved = load_checkpoint(tmp_path / "a").section("objective")
    assert int(saved["queue.ptr"]) == (3 * 64) % 100
    longer = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_iters": 5})})
    train(longer, tmp_path / "b", resume=tmp_path / "a" / "last.safetensors", quiet=True)
    train(longer, tmp_path / "c", quiet=True)
    resumed, straight = (load_checkpoint(tmp_path / r).section("objective") for r in ("b", "c"))
    assert torch.equal(resumed["queue.logits"], straight["queue.logits"])
    assert int(resumed["queue.ptr"]) == (5 * 64) % 100


def test_resuming_with_another_queue_size_is_one_clear_error(tmp_path, capsys):
    from hdgen_cli.cli.app import run

    assert run(["train", "-p", "hdge", "--out", str(tmp_path / "a"), "--quiet", *DIGITS, "train.max_iters=1"]) == 0
    assert run(["train", "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--quiet",
                "objective.hdge.queue_size=64"]) != 0
    err = capsys.readouterr().err.strip()
    assert "queue" in err and len(err.splitlines()) == 1


def test_hdge_needs_the_logit_energy():
    with pytest.raises(Exception, match="energy.name=logits"):
        load_config("hdge", ["energy.name=mmc", "model.head=false"])


def test_unit_rows_follow_every_push_exactly():
    """The normalised queue is kept row by row (only pushed rows are renormalised): it must equal
    normalising the whole queue, after wrapping pushes and after a restore."""
    torch.manual_seed(0)
    q = LogitQueue(10, 4)
    first = q.unit_rows()
    for n in (3, 4, 6):  # the last push wraps around the end
        q.push(torch.randn(n, 4) * 5)
        assert torch.equal(q.unit_rows(), F.normalize(q.logits, dim=1))
    assert q.unit_rows() is first  # updated in place, not rebuilt
    q.load_state_dict({"logits": torch.randn(10, 4), "ptr": torch.tensor(2)})
    assert torch.equal(q.unit_rows(), F.normalize(q.logits, dim=1))
