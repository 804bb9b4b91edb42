"""Re-statements of the official training steps, for benchmarks/vs_reference.py.

Written for hdgen from the papers and the project's method pages (docs/methods/), in the official
codes' style: plain PyTorch, one forward per batch, sampler gradients taken with the weights left
in the graph (`retain_graph=True`), the passes in the official order. Nothing is copied; only the
work each step does (passes, batch sizes, tensor shapes) is meant to match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RefBlock(nn.Module):
    def __init__(self, cin, cout, stride, bn):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, momentum=0.9) if bn else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(cout, momentum=0.9) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=True)
        self.act = nn.LeakyReLU(0.2)
        self.short = nn.Conv2d(cin, cout, 1, stride, bias=True) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.conv1(self.act(self.bn1(x)))
        out = self.conv2(self.act(self.bn2(out)))
        return out + (self.short(x) if self.short is not None else x)


class RefWRN(nn.Module):
    """The JEM-variant WRN as the official codes lay it out: stem, three stages, BN, LeakyReLU,
    8x8 average pool, a linear class head."""

    def __init__(self, depth, width, bn, classes=10, head=True):
        super().__init__()
        n, w = (depth - 4) // 6, [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=True)
        layers = []
        for i, stride in enumerate((1, 2, 2)):
            layers += [RefBlock(w[i], w[i + 1], stride, bn)] + [RefBlock(w[i + 1], w[i + 1], 1, bn) for _ in range(n - 1)]
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(w[3], momentum=0.9) if bn else nn.Identity()
        self.act = nn.LeakyReLU(0.2)
        self.head = nn.Linear(w[3], classes) if head else nn.Identity()  # GMMC: no head, phi is the output

    def forward(self, x):
        h = self.act(self.bn(self.layers(self.conv1(x))))
        return self.head(F.avg_pool2d(h, 8).flatten(1))


def _lse(f, x):
    return torch.logsumexp(f(x), 1)


def _jem_loss(f, x_lab, y_lab, x_data, x_q):
    """p(x)'s contrastive term and CE, forwarding data, samples and the CE batch in that order."""
    return -(_lse(f, x_data).mean() - _lse(f, x_q).mean()) + F.cross_entropy(f(x_lab), y_lab)


class RefBuffer:
    def __init__(self, size, init):
        self.init, self.images = init, init(size)

    def draw(self, b, fresh=None):
        idx = torch.randint(0, len(self.images), (b,))
        fresh = self.init(b) if fresh is None else fresh
        choose = (torch.rand(b) < 0.05).float()[:, None, None, None]
        return choose * fresh + (1 - choose) * self.images[idx], idx


def ref_sgld(f, buf, n, steps=20):
    """JEM's sampler: n chains from the buffer, SGLD in eval mode (step 1, noise 0.01), written back."""
    x_k, idx = buf.draw(n)
    f.eval()
    x_k = x_k.requires_grad_(True)
    for _ in range(steps):
        g = torch.autograd.grad(_lse(f, x_k).sum(), [x_k], retain_graph=True)[0]
        x_k = (x_k + 1.0 * g + 0.01 * torch.randn_like(x_k)).detach().requires_grad_(True)
    f.train()
    x_q = x_k.detach()
    buf.images[idx] = x_q
    return x_q


def ref_jem(f, opt, buf, x_lab, y_lab, x_data, steps=20):
    x_q = ref_sgld(f, buf, len(x_data), steps)
    loss = _jem_loss(f, x_lab, y_lab, x_data, x_q)
    opt.zero_grad()
    loss.backward()
    opt.step()


def ref_pyld(f, x, outer, inner=5, eta=0.2):
    for _ in range(outer):
        x = x.detach().requires_grad_(True)
        g = torch.autograd.grad(_lse(f, x).sum(), [x], retain_graph=True)[0]
        for _ in range(inner):
            x = (x + eta * g.clamp(-1, 1)).clamp(-1, 1)
    return x.detach()


def ref_jempp(f, opt, buf, gm, x_lab, y_lab, x_data, outer):
    e_data = _lse(f, x_data).mean()
    x_k, idx = buf.draw(len(x_data), fresh=gm(len(x_data)))  # 64 fresh Gaussian images every iteration
    x_q = ref_pyld(f, x_k, outer)
    buf.images[idx] = x_q
    loss = -(e_data - _lse(f, x_q).mean()) + F.cross_entropy(f(x_lab), y_lab)
    opt.zero_grad()
    loss.backward()
    opt.step()


def ref_sada(f, opt, buf, gm, x_lab, y_lab, x_data, steps=5, rho=0.2):
    x_k, idx = buf.draw(len(x_data), fresh=gm(len(x_data)))
    x_k = x_k.requires_grad_(True)
    e_data = _lse(f, x_data).mean()
    for _ in range(steps):
        g = torch.autograd.grad(_lse(f, x_k).sum(), [x_k], retain_graph=True)[0]
        x_k = (x_k + 1.0 * g.clamp(-1, 1)).clamp(-1, 1).detach().requires_grad_(True)
    x_q = x_k.detach()
    buf.images[idx] = x_q
    loss = -(e_data - _lse(f, x_q).mean()) + F.cross_entropy(f(x_lab), y_lab)
    opt.zero_grad()
    loss.backward()
    params = [p for p in f.parameters() if p.grad is not None]
    norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
    eps = [rho * p.grad / (norm + 1e-12) for p in params]
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    bns = [m for m in f.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 0.0
    opt.zero_grad()
    _jem_loss(f, x_lab, y_lab, x_data, x_q).backward()
    for m in bns:
        m.momentum = 0.9
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.sub_(e)
    opt.step()


def ref_ce(f, opt, x, y):
    loss = F.cross_entropy(f(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def gaussian_init(x: torch.Tensor):
    """A full-covariance Gaussian fitted to `x` (one class's worth of statistics, as the official
    informative init draws per class): the cost of drawing from it is what matters here."""
    flat = x.flatten(1).double()
    mu, cov = flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(flat.shape[1], dtype=torch.float64)
    dist = torch.distributions.MultivariateNormal(mu.float(), covariance_matrix=cov.float())
    return lambda n: dist.sample((n,)).view(n, *x.shape[1:]).clamp(-1, 1)


def _half_sq_dist(phi, targets):
    """GMMC's energy to given points: the batch mean of 1/2 ||phi - t||^2."""
    return 0.5 * (phi - targets).pow(2).sum(1).mean()


def ref_gmmc_gen(f, opt, buf_x, centres, x_data, y_data, steps=20, gamma=1e-3, beta=0.5):
    """GMMC (Gen), eq. 7: data forward, a class-conditional staged chain (z drawn once, 20
    noise-free clamped descent steps on the batch mean of 1/2 ||phi(x) - z||^2, alpha 1), the
    samples' forward, Adam. Chains start in the data labels' buffer blocks, 2.5 % re-initialised."""
    fp = _half_sq_dist(f(x_data), centres[y_data])
    block = len(buf_x) // len(centres)
    idx = y_data * block + torch.randint(0, block, (len(y_data),))
    fresh = (torch.rand(len(y_data)) < 0.025).float()[:, None, None, None]
    x_k = (fresh * (torch.rand_like(buf_x[idx]) * 2 - 1) + (1 - fresh) * buf_x[idx]).requires_grad_(True)
    z = centres[y_data] + gamma * torch.randn(len(y_data), centres.shape[1])
    f.eval()
    for _ in range(steps):
        g = torch.autograd.grad(_half_sq_dist(f(x_k), z), [x_k], retain_graph=True)[0]
        x_k = (x_k - 1.0 * g).clamp(-1, 1).detach().requires_grad_(True)
    f.train()
    x_q = x_k.detach()
    buf_x[idx] = x_q
    loss = fp - beta * _half_sq_dist(f(x_q), centres[y_data])
    opt.zero_grad()
    loss.backward()
    opt.step()


class RefQueue:
    """HDGE's logit queue as its official code keeps it: [C, K], filled column-wise in FIFO order."""

    def __init__(self, classes, size):
        self.logits, self.ptr = torch.randn(classes, size), 0

    def push(self, logits):
        b = len(logits)
        self.logits[:, self.ptr:self.ptr + b] = logits.detach().T
        self.ptr = (self.ptr + b) % self.logits.shape[1]


def ref_hdge_terms(f, queue, x_lab, y_lab, temperature=0.1):
    """CE, then L_con in the official code's lse-onehot form from a second forward of the same
    batch: the whole queue normalised every step, the one-hot products formed as a [B, C, K] tensor
    and reduced over C, a cross-entropy over 1 + K scores; the batch's logits are enqueued."""
    ce = F.cross_entropy(f(x_lab), y_lab)
    logits = f(x_lab)
    onehot = F.one_hot(y_lab, logits.shape[1]).float()
    pos = torch.logsumexp(onehot * F.normalize(logits, dim=1), 1, keepdim=True)
    unit = F.normalize(queue.logits.clone(), dim=0)
    neg = torch.logsumexp(onehot[:, :, None] * unit[None], 1)  # [B, K]
    scores = torch.cat([pos, neg], 1) / temperature
    queue.push(logits)
    return ce + F.cross_entropy(scores, torch.zeros(len(y_lab), dtype=torch.long))


def ref_hdge(f, opt, queue, x_lab, y_lab):
    loss = ref_hdge_terms(f, queue, x_lab, y_lab)
    opt.zero_grad()
    loss.backward()
    opt.step()


def ref_hdge_jem(f, opt, queue, buf, x_lab, y_lab, x_data, steps=20):
    """HDGE+JEM, eq. 17: JEM's p(x) term (data forward, SGLD-20 in eval mode, samples' forward)
    plus HDGE's two labelled forwards."""
    x_q = ref_sgld(f, buf, len(x_data), steps)
    loss = -(_lse(f, x_data).mean() - _lse(f, x_q).mean()) + ref_hdge_terms(f, queue, x_lab, y_lab)
    opt.zero_grad()
    loss.backward()
    opt.step()
