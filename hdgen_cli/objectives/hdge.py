"""HDGE's contrastive approximation of log q(x|y) ([HDGE] eqs. 13-15, App. Algorithms 1-2).

    L_con = -log( e^{l_pos} / (e^{l_pos} + sum_k e^{l_neg,k}) ),   l_pos = s(x)[y] / T,   l_neg,k = s_k[y] / T

with s(x) = f(x) / ||f(x)||_2 the L2-normalised logits and T the temperature. The negatives
s_k are either K past logit vectors held in a FIFO queue (MoCo style, Algorithm 1: raw online
logits, normalised when read, no momentum encoder) or the other examples of the batch
(SimCLR style, Algorithm 2). They are read at the *positive's* label y, so the term contrasts
f(x)[y] against the label-y logits of other examples. `positive="lse-onehot"` is the official
code's form log(e^{s[y]} + C - 1) / T for the positive and each negative (docs/methods/hdge.md, decisions).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class LogitQueue:
    """K x C ring buffer of raw logits, initialised N(0, 1); `push` overwrites the oldest rows and wraps."""

    def __init__(self, size: int, num_classes: int, device="cpu"):
        self.logits = torch.randn(size, num_classes, device=device)
        self.ptr = torch.zeros((), dtype=torch.long, device=device)  # a tensor, so it rides in checkpoints
        self._unit: torch.Tensor | None = None  # the rows normalised, kept in step with `push`

    def unit_rows(self) -> torch.Tensor:
        """The queue's rows as unit vectors. Normalising all K rows every step cost more than the
        rest of the term (65 536 x 10 on a CPU); only the pushed rows change, so only they are
        renormalised. Each row is normalised on its own, so the values are those of a full pass."""
        if self._unit is None:
            self._unit = F.normalize(self.logits, dim=1)
        return self._unit

    @property
    def size(self) -> int:
        return self.logits.shape[0]

    @torch.no_grad()
    def push(self, logits: torch.Tensor) -> None:
        logits = logits.detach()[-self.size:]  # a batch larger than the queue keeps only its newest rows
        idx = (self.ptr + torch.arange(len(logits), device=self.logits.device)) % self.size
        self.logits[idx] = logits.to(self.logits.dtype)
        if self._unit is not None:
            self._unit[idx] = F.normalize(self.logits[idx], dim=1)
        self.ptr.copy_((self.ptr + len(logits)) % self.size)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"logits": self.logits, "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["logits"].shape != self.logits.shape:
            raise ValueError(f"queue shape {tuple(state['logits'].shape)} != expected {tuple(self.logits.shape)}")
        self.logits.copy_(state["logits"])
        self.ptr.copy_(state["ptr"])
        self._unit = None


def contrastive_log_qxy(logits: torch.Tensor, y: torch.Tensor, queue: torch.Tensor | None, temperature: float,
                        positive: str = "eq15", unit_queue: bool = False) -> torch.Tensor:
    """Mean L_con over the batch: -log of the positive's share of softmax([pos, negatives] / T).
    `queue` [K, C] logits gives the negatives (rows already unit vectors when `unit_queue`); None uses
    the batch (each example against the other B - 1, whose gradients flow as in SimCLR).

    The queue's negatives of example b are column y_b of the queue, so their log-sum-exp depends on
    the class alone: it is taken once per class over the K rows ([C] values), then read at y. Neither
    the [K, B] gather nor a [B, K + 1] score matrix is built."""
    s = F.normalize(logits, dim=1)
    pos = s.gather(1, y.view(-1, 1)).squeeze(1)  # [B]
    neg = (queue if unit_queue else F.normalize(queue, dim=1)) if queue is not None else s[:, y]  # [K, C] or [B, B]
    if positive == "lse-onehot":
        # log(e^v + (C - 1) e^0): the masked zeros of the one-hot product inside the log-sum-exp.
        shift = math.log(logits.shape[1] - 1)
        pos, neg = torch.logaddexp(pos, torch.full_like(pos, shift)), torch.logaddexp(neg, torch.full_like(neg, shift))
    if queue is None:  # neg[j, b] = s(x_j)[y_b], without the example itself
        neg = neg.masked_fill(torch.eye(len(y), dtype=torch.bool, device=neg.device), float("-inf"))
    neg_lse = torch.logsumexp(neg / temperature, dim=0)  # [B] for the batch, [C] for the queue
    if queue is not None:
        neg_lse = neg_lse[y]
    pos = pos / temperature
    return (torch.logaddexp(pos, neg_lse) - pos).mean()
