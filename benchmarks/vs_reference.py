"""hdgen's training iteration next to a re-statement of each official training step, interleaved.

Not a test: it prints times measured in one run. The reference steps below are written for
this benchmark from the papers and the project's method pages (docs/methods/), in the official
codes' style: plain PyTorch, one forward per batch, sampler gradients with the weights left in
the graph. Same passes, same order, same batch sizes as the official steps; nothing is copied.

- JEM: three forwards (data, samples, CE batch) in train mode; SGLD-20 in eval mode with
  `retain_graph=True`; Adam.
- JEM++ (PYLD-M-5, "alltrain1"): every pass in BatchNorm train mode; data forward, then M outer
  steps (one full forward/backward each, its gradient reused for 5 clamped inner steps), then
  the samples' forward and the CE forward; 64 fresh full-covariance Gaussian images are drawn
  every iteration and 5 % of the chains restart from them; SGD.
- SADA-JEM (SGLD-5, clipped gradient, SAM): data forward, sampling, samples' forward, CE
  forward, backward; perturb the weights by rho g / ||g||; the same three forwards again with
  BatchNorm running statistics frozen; restore and step SGD.
Each side also takes a plain softmax step (one forward, CE, backward, step) on its own WRN: the
"CE step" rows compare the backbones alone. hdgen runs twice in every round: in its default memory
layout (`train.channels_last=auto`, channels-last on a CPU) and in the contiguous layout the
official codes use, so the table shows what a user gets and what the step itself costs.

    python benchmarks/vs_reference.py                    # WRN-10-2, batch 64, CPU, a few minutes
    python benchmarks/vs_reference.py --depth 16 --width 4 --iters 3
"""

from __future__ import annotations

import argparse
import functools
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from iteration_cost import add_shape_args, build, hdgen_step, rounds, wrn_shape
from hdgen_cli.train import train_step


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

    def __init__(self, depth, width, bn, classes=10):
        super().__init__()
        n, w = (depth - 4) // 6, [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=True)
        layers = []
        for i, stride in enumerate((1, 2, 2)):
            layers += [RefBlock(w[i], w[i + 1], stride, bn)] + [RefBlock(w[i + 1], w[i + 1], 1, bn) for _ in range(n - 1)]
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(w[3], momentum=0.9) if bn else nn.Identity()
        self.act = nn.LeakyReLU(0.2)
        self.head = nn.Linear(w[3], classes)

    def forward(self, x):
        h = self.act(self.bn(self.layers(self.conv1(x))))
        return self.head(F.avg_pool2d(h, 8).flatten(1))


def _lse(f, x):
    return torch.logsumexp(f(x), 1)


class RefBuffer:
    def __init__(self, size, init):
        self.init, self.images = init, init(size)

    def draw(self, b, fresh=None):
        idx = torch.randint(0, len(self.images), (b,))
        fresh = self.init(b) if fresh is None else fresh
        choose = (torch.rand(b) < 0.05).float()[:, None, None, None]
        return choose * fresh + (1 - choose) * self.images[idx], idx


def ref_jem(f, opt, buf, x_lab, y_lab, x_data, steps=20):
    x_k, idx = buf.draw(len(x_data))
    f.eval()
    x_k = x_k.requires_grad_(True)
    for _ in range(steps):
        g = torch.autograd.grad(_lse(f, x_k).sum(), [x_k], retain_graph=True)[0]
        x_k = (x_k + 1.0 * g + 0.01 * torch.randn_like(x_k)).detach().requires_grad_(True)
    f.train()
    x_q = x_k.detach()
    buf.images[idx] = x_q
    loss = -(_lse(f, x_data).mean() - _lse(f, x_q).mean()) + F.cross_entropy(f(x_lab), y_lab)
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


def _sada_loss(f, x_lab, y_lab, x_data, x_q):
    return -(_lse(f, x_data).mean() - _lse(f, x_q).mean()) + F.cross_entropy(f(x_lab), y_lab)


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
    _sada_loss(f, x_lab, y_lab, x_data, x_q).backward()
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


def synthetic_train_set():
    """1 000 random CIFAR-shaped images in 10 classes: enough for the GM init's statistics."""
    from hdgen_cli.data import ImageSet

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(10).repeat(100), 10, "synthetic", True)


ROWS = [("JEM SGLD-20", "jem", False), ("JEM++ PYLD-5-5", "jempp-m5", True), ("JEM++ PYLD-10-5", "jempp-m10", True),
        ("SADA-JEM K5 + SAM (CE batch 64)", "sada-jem-k5", True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(parser)
    parser.add_argument("--only", nargs="*", help="row labels (prefixes) to time")
    args = parser.parse_args()
    device = torch.device("cpu")
    args.precision, args.compile = "fp32", False
    print(f"WRN-{args.depth}-{args.width}, batch {args.batch}, 32x32x3, CPU float32, {torch.get_num_threads()} threads, "
          f"buffer 1000; {args.iters} interleaved rounds after {args.warmup} warm-up; medians. hdgen runs in its "
          "default layout (channels-last on a CPU) and, in the last columns, in the official codes' contiguous one\n")
    print(f"{'method':<32} {'official s/iter':>15} {'hdgen s/iter':>12} {'official/hdgen':>14}   "
          f"{'hdgen contiguous':>16} {'official/hdgen':>14}")
    for label, preset, bn in ROWS:
        if args.only and not any(label.startswith(o) for o in args.only):
            continue
        shape = wrn_shape(args, "batch" if bn else "none")
        steps = []
        for layout in ("auto", "false"):  # hdgen's default layout, then the official codes' one
            args.channels_last = layout
            # hdgen's own p0 (the GM init for JEM++ and SADA, fitted to a synthetic training set)
            cfg, _, hdgen_step_fn, (x_lab, y_lab, x_data) = hdgen_step(preset, [], args, device, shape,
                                                                       train_set=synthetic_train_set())
            _, softmax_model, softmax_obj, softmax_opt = build("softmax", [], args, device, shape)
            hdgen_ce = functools.partial(train_step, softmax_model, softmax_obj, softmax_opt, x_lab, y_lab, None)
            steps.append((hdgen_step_fn, hdgen_ce))
        torch.manual_seed(0)
        ref = RefWRN(args.depth, args.width, bn)
        if preset == "jem":
            ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-4)
            buf = RefBuffer(1000, lambda n: torch.rand(n, 3, 32, 32) * 2 - 1)
            ref_step = lambda: ref_jem(ref, ref_opt, buf, x_lab, y_lab, x_lab if x_data is None else x_data)  # noqa: E731
        else:
            ref_opt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            gm = gaussian_init(torch.cat([x_lab, x_data if x_data is not None else x_lab]))
            buf = RefBuffer(1000, gm)
            if preset.startswith("jempp"):
                ref_step = lambda: ref_jempp(ref, ref_opt, buf, gm, x_lab, y_lab, x_data, cfg.sampler.steps)  # noqa: E731
            else:
                ref_step = lambda: ref_sada(ref, ref_opt, buf, gm, x_lab, y_lab, x_data, cfg.sampler.steps)  # noqa: E731
        ce_ref_model = RefWRN(args.depth, args.width, bn)
        ce_ref_opt = torch.optim.SGD(ce_ref_model.parameters(), lr=0.01, momentum=0.9)
        ref_ce_step = functools.partial(ref_ce, ce_ref_model, ce_ref_opt, x_lab, y_lab)
        # per round: official, hdgen default, hdgen contiguous; then the same three CE steps
        times = rounds([ref_step, steps[0][0], steps[1][0], ref_ce_step, steps[0][1], steps[1][1]], args, device)

        def cells(first: int) -> str:
            med = [statistics.median(t[first + i] for t in times) for i in range(3)]
            speed = [statistics.median(t[first] / t[first + i] for t in times) for i in (1, 2)]
            return f"{med[0]:15.3f} {med[1]:12.3f} {speed[0]:14.2f}   {med[2]:16.3f} {speed[1]:14.2f}"
        print(f"{label:<32} {cells(0)}", flush=True)
        print(f"{'  CE step alone':<32} {cells(3)}", flush=True)

if __name__ == "__main__":
    main()
