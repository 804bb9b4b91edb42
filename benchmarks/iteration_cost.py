"""Time per training iteration of every method relative to one softmax step, next to the ideal.

Not a test: it prints ratios measured in one run on one machine. Every method runs hdgen's own
`train_step` on the same backbone, batch size (64 on every stream) and synthetic CIFAR-shaped
data, so only the algorithm differs.

"passes" counts what the algorithm needs: T training passes (forward + backward to the weights,
each a softmax step's work) and S sampler passes (forward + backward to the input only). PYLD's
N inner steps touch the first layer only and count as nothing; SAM repeats the training passes at
the perturbed weights. "ideal" is that count in softmax steps, T + S * (sampler pass / softmax
step), with both costs measured in this run: the S sampler passes are timed back to back, as the
sampler runs them, because on a shared machine a lone pass of under a second times faster than
the same pass inside a loop of twenty. "ratio/ideal" near 1 means no wasted work. It is the
median over rounds; "by min" is the same ratio from each quantity's fastest round, which a
shared machine's slow spells (they only ever add time) disturb less.

The last table times one JEM step (SGLD-20, p(x) on the CE batch, the jem preset's norm-free
model) against a naive implementation of the same step in the official codes' style: separate
forwards for CE and p(x) on the same batch and for the samples, sampler gradients taken with
the weights still in the graph and `retain_graph=True`.

    python benchmarks/iteration_cost.py                       # small WRN on a 2-core CPU, about 8 minutes
    python benchmarks/iteration_cost.py --depth 28 --width 10 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from hdgen_cli.bench.cost import clock
from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, ImageSet
from hdgen_cli.parts import DataInfo, build_run
from hdgen_cli.sampling import energy_grad, model_mode
from hdgen_cli.train import train_step
from hdgen_cli.models.fastpath import autocast, use_channels_last

# (label, preset, overrides, training passes T, sampler passes S)
METHODS = [
    ("softmax", "softmax", [], 1, 0),
    ("JEM SGLD-20", "jem", [], 3, 20),
    ("JEM++ PYLD-5-5", "jempp-m5", [], 3, 5),
    ("JEM++ PYLD-10-5", "jempp-m10", [], 3, 10),
    ("JEM++ PYLD-20-5", "jempp-m20", [], 3, 20),
    ("JEM++ PYLD-10-20", "jempp-m10", ["sampler.inner_steps=20"], 3, 10),
    ("SADA-JEM K5 + SAM", "sada-jem-k5", [], 6, 5),  # CE batch = --batch (wrn_shape), as every stream
    ("GMMC dis", "gmmc-dis", [], 1, 0),
    ("GMMC gen tau-20", "gmmc-gen", ["objective.gmmc.start_epoch=0"], 2, 20),
    ("HDGE (queue 65536)", "hdge", [], 1, 0),
    ("HDGE+JEM SGLD-20", "hdge-jem", [], 3, 20),
]


def build(preset, overrides, args, device, shape_overrides, train_set=None, info=None):
    """`train_set` feeds a data-driven p0 (the gm init); without it the shape overrides must name one.
    `info` is the data's shape (default: 32x32x3, 10 classes)."""
    cfg = load_config(preset, shape_overrides + overrides)
    info = info or DataInfo(3, 32, 10, cfg.data.pixel_range)
    run = build_run(cfg, device, train_set, info, channels_last=channels_last(args, device), compile=args.compile)
    run.model.train()
    run.objective.iteration, run.objective.total_iters = 1, 10**6  # schedules (CLEL's cosine encoder lr) need a horizon
    return cfg, run.model, run.objective, run.optimizer


def fastest(times: list[list[float]]) -> list[float]:
    """Each function's fastest round, from `rounds`' per-round seconds."""
    return [min(column) for column in zip(*times)]


def rounds(fns, args, device) -> list[list[float]]:
    """Per-round seconds of each function, the functions run back to back in every round, so a
    slow spell of a shared machine hits a method and its reference alike."""
    for fn in fns:
        for _ in range(args.warmup):
            fn()
    return [[clock(fn, device) for fn in fns] for _ in range(args.iters)]


def batches(args, device, pixel_range="symmetric"):
    torch.manual_seed(0)
    images = torch.randint(0, 256, (2 * args.batch, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (2 * args.batch,))
    data = ImageSet(images, labels, 10, "synthetic", True)
    plain = BatchTransform(False, 0, False, 0.0, pixel_range)
    b = args.batch
    return plain(data.images[:b].to(device)), data.labels[:b].to(device), plain(data.images[b:].to(device))


def clel_shape(args) -> list[str]:
    """Overrides that put CLEL (its own networks) on the benchmark's batch and 1000-slot buffer."""
    return [f"data.px.batch_size={args.batch}", f"objective.clel.ebm_batch={args.batch}", "sampler.buffer.size=1000"]


def add_layout_arg(parser) -> None:
    """`--channels-last auto|true|false`, as `train.channels_last` (auto: on for a CPU)."""
    parser.add_argument("--channels-last", choices=["auto", "true", "false"], default="auto",
                        help="the model's memory layout, as train.channels_last (default auto: hdgen's default)")


def channels_last(args, device) -> bool:
    setting = getattr(args, "channels_last", "auto")
    return use_channels_last({"true": True, "false": False}.get(setting, setting), device)


def add_shape_args(parser, iters: int = 5, warmup: int = 2) -> None:
    """The options every CPU benchmark here shares: the WRN's size, the batch and the rounds."""
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=iters)
    parser.add_argument("--warmup", type=int, default=warmup)


def wrn_shape(args, norm: str) -> list[str]:
    """Overrides that put any preset on the benchmark's WRN, batch (every stream) and 1000-slot buffer."""
    return ["model.name=wrn", f"model.depth={args.depth}", f"model.width={args.width}", f"model.norm={norm}",
            "model.dropout=0", f"data.px.batch_size={args.batch}", f"data.ce.batch_size={args.batch}",
            "sampler.buffer.size=1000"]


def hdgen_step(preset, overrides, args, device, shape, train_set=None):
    """hdgen's training step of a preset on fixed batches at its config's stream sizes (wrn_shape sets
    both to --batch); a stream the preset does not read is None: (cfg, model, step, (x_lab, y_lab, x_data))."""
    cfg, model, objective, optimizer = build(preset, overrides, args, device, shape, train_set=train_set)
    x_lab, y_lab, _ = batches(argparse.Namespace(batch=cfg.data.ce.batch_size), device, cfg.data.pixel_range)
    _, _, x_data = batches(argparse.Namespace(batch=cfg.data.px.batch_size), device, cfg.data.pixel_range)
    x_data = x_data if cfg.uses_px_stream else None
    x_lab, y_lab = (x_lab, y_lab) if cfg.uses_ce_stream else (None, None)
    amp = lambda: autocast(args.precision, device)  # noqa: E731
    step = lambda: train_step(model, objective, optimizer, x_lab, y_lab, x_data, amp=amp)  # noqa: E731
    return cfg, model, step, (x_lab, y_lab, x_data)


def method_step(preset, overrides, args, device, shape, passes: int = 1):
    """hdgen's training step of a preset, and `passes` sampler passes back to back (forward +
    input-only backward, the sampler's BatchNorm mode) on the same model."""
    cfg, model, step, (x_lab, _, _) = hdgen_step(preset, overrides, args, device, shape)
    amp = lambda: autocast(args.precision, device)  # noqa: E731

    def sampler_passes():
        with model_mode(model, cfg.sampler.model_mode), amp():
            for _ in range(passes):
                energy_grad(model.energy, x_lab)
    return step, sampler_passes


def naive_jem_step(model, optimizer, buffer, sampler_cfg, x_lab, y_lab):
    """The same JEM step written the way the official codes do it (for comparison only)."""
    logits = model.scores(x_lab)                                  # CE forward
    ce = F.cross_entropy(logits, y_lab)
    e_data = -torch.logsumexp(model.scores(x_lab), 1)            # a second forward for p(x)
    x_k, idx = buffer.draw(len(x_lab))
    was_training = model.training
    model.eval()
    x_k = x_k.requires_grad_(True)
    for _ in range(sampler_cfg.steps):                            # weights stay in the graph
        f_prime = torch.autograd.grad(torch.logsumexp(model.scores(x_k), 1).sum(), [x_k], retain_graph=True)[0]
        x_k = (x_k + sampler_cfg.step_size * f_prime + sampler_cfg.noise * torch.randn_like(x_k)).detach()
        x_k.requires_grad_(True)
    model.train(was_training)
    x_q = x_k.detach()
    buffer.update(idx, x_q)
    e_q = -torch.logsumexp(model.scores(x_q), 1)
    loss = ce + e_data.mean() - e_q.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def clel_row(args, device) -> str:
    """CLEL has its own networks (SN-ResNet EBM, ResNet-18 encoder), so its ideal is built from their
    measured passes: 2 EBM training passes (x+, x-), 60 EBM sampler passes, one encoder training
    pass over the two views, one no-grad encoder pass for z+ (Alg. 1 line 5), and four strong
    augmentations (two views, z+'s, one chain transition). The two optimizer steps and the EMA
    updates are left out: about 0.04 s on a 2-core CPU, under 0.5 % of the step."""
    cfg, model, objective, optimizer = build("clel-small", [], args, device, clel_shape(args))
    _, _, x = batches(args, device, "unit")
    amp = lambda: autocast(args.precision, device)  # noqa: E731

    def ebm_train():
        with amp():
            loss = model.energy(x).mean()
        loss.backward()

    steps = cfg.sampler.steps

    def ebm_sample():  # the chain's passes back to back
        with model_mode(model, cfg.sampler.model_mode), amp():
            for _ in range(steps):
                energy_grad(model.energy, x)

    def encoder_eval():
        with torch.no_grad(), amp():
            objective.encoder(objective.augment(x))

    def encoder_train():
        views = torch.cat([objective.augment(x), objective.augment(x)])
        with amp():
            loss = objective.encoder(views).pow(2).mean()
        loss.backward()

    step = lambda: train_step(model, objective, optimizer, None, None, x, amp=amp)  # noqa: E731
    times = rounds([step, ebm_train, ebm_sample, encoder_train, encoder_eval, lambda: objective.augment(x)],
                   args, device)
    # encoder_train holds the two views' augmentations and encoder_eval z+'s; one more is the chain transition
    cost = lambda tr, sp, enc, z_pos, aug: 2 * tr + sp + enc + z_pos + aug  # noqa: E731
    ideals = [cost(*t[1:]) for t in times]
    seconds, ideal = statistics.median(t[0] for t in times), statistics.median(ideals)
    ratio = statistics.median(t[0] / i for t, i in zip(times, ideals))
    best = fastest(times)
    by_min = best[0] / cost(*best[1:])
    return (f"CLEL-small SGLD-{steps}: {seconds:.4f} s/iter; ideal {ideal:.4f} s = 2 EBM training passes + {steps} "
            f"EBM sampler passes (back to back) + an encoder pass over 2 views + a no-grad encoder pass for z+ "
            f"+ 1 transition, each timed alone; ratio/ideal {ratio:.3f} (by min {by_min:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast the forward passes")
    add_layout_arg(parser)
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    parser.add_argument("--only", nargs="*", help="labels (prefixes) of the methods to time")
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = wrn_shape(args, "batch") + ["sampler.buffer.init=uniform"]  # the same p0 everywhere: not what is timed
    print(f"WRN-{args.depth}-{args.width} (BatchNorm), batch {args.batch}, 32x32x3, {device}, {args.precision}"
          f"{', channels-last' if channels_last(args, device) else ', contiguous'}{', compiled' if args.compile else ''}, "
          f"{args.iters} timed rounds after {args.warmup} warm-up; medians over rounds\n")
    softmax, _ = method_step("softmax", [], args, device, shape)
    print(f"{'method':<20} {'s/iter':>8} {'ratio':>7} {'passes':>9} {'ideal':>7} {'ratio/ideal':>12} {'by min':>7}   "
          "sampler pass / softmax step")
    for label, preset, overrides, n_train, n_sample in METHODS:
        if args.only and not any(label.startswith(o) for o in args.only):
            continue
        n = max(n_sample, 1)  # a row without sampling still shows what one pass costs
        step, sampler_passes = method_step(preset, overrides, args, device, shape, passes=n)
        times = rounds([step, softmax, sampler_passes], args, device)
        cost = lambda s, p: n_train * s + n_sample / n * p  # noqa: E731  (seconds: T softmax steps + S passes)
        ratio = statistics.median(m / s for m, s, _ in times)
        ideal = statistics.median(cost(s, p) / s for _, s, p in times)
        seconds = statistics.median(m for m, _, _ in times)
        best = fastest(times)
        by_min = best[0] / cost(*best[1:])
        print(f"{label:<20} {seconds:8.4f} {ratio:7.2f} {f'{n_train}T+{n_sample}S':>9} {ideal:7.2f} "
              f"{ratio / ideal:12.3f} {by_min:7.3f}   {statistics.median(p / n / s for _, s, p in times):.2f}")

    if not args.only or any("CLEL".startswith(o) for o in args.only):
        print("\n" + clel_row(args, device))

    # hdgen's JEM step against the naive one, same model (the jem preset's, no BatchNorm) and batch
    jem_shape = [s for s in shape if s != "model.norm=batch"] + ["data.shared_batch=true"]
    cfg, model, objective, optimizer = build("jem", [], args, device, jem_shape)
    x_lab, y_lab, _ = batches(args, device)
    times = rounds([lambda: train_step(model, objective, optimizer, x_lab, y_lab, None),
                    lambda: naive_jem_step(model, optimizer, objective.buffer, cfg.sampler, x_lab, y_lab)], args, device)
    print(f"\nJEM SGLD-20 step, p(x) on the CE batch, no BatchNorm: hdgen {statistics.median(t[0] for t in times):.4f} s, "
          f"naive {statistics.median(t[1] for t in times):.4f} s, naive/hdgen {statistics.median(n / h for h, n in times):.3f}")


if __name__ == "__main__":
    main()
