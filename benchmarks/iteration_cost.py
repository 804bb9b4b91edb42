"""Time per training iteration of each method relative to one softmax step on the same model and batch.

Not a test: it prints ratios measured in one run on one machine. Every method runs hdgen's own
`train_step` on the same backbone and the same batch size (64 on both streams), on synthetic
CIFAR-shaped data, so only the algorithm differs. "ideal" is the number of full forward/backward
passes the algorithm needs (softmax = 1): JEM-K is K sampler passes plus data, samples and CE;
PYLD-M-N needs M full passes (its N inner steps touch the first layer only); SAM repeats the
data, samples and CE passes at the perturbed weights.

    python benchmarks/iteration_cost.py                       # small WRN on CPU, about a minute
    python benchmarks/iteration_cost.py --depth 28 --width 10 --device cuda   # paper scale
"""

from __future__ import annotations

import argparse
import time

import torch

from hdgen_cli.config import load_config
from hdgen_cli.data import BatchTransform, ImageSet
from hdgen_cli.objectives import JEMObjective
from hdgen_cli.optim import build_optimizer
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_sampler
from hdgen_cli.train import train_step
from hdgen_cli.train.fastpath import autocast, prepare_model

# (label, preset, overrides, ideal passes)
METHODS = [
    ("softmax", "softmax", [], 1),
    ("JEM SGLD-20", "jem", ["model.norm=batch"], 23),
    ("JEM++ PYLD-5-5", "jempp-m5", [], 8),
    ("JEM++ PYLD-10-5", "jempp-m10", [], 13),
    ("JEM++ PYLD-20-5", "jempp-m20", [], 23),
    ("JEM++ PYLD-10-10", "jempp-m10", ["sampler.inner_steps=10"], 13),
    ("JEM++ PYLD-10-20", "jempp-m10", ["sampler.inner_steps=20"], 13),
    ("SADA-JEM K5 + SAM", "sada-jem-k5", [], 11),
]


def time_method(preset, overrides, args, data, device) -> float:
    shape = [f"model.depth={args.depth}", f"model.width={args.width}", "model.norm=batch",
             f"data.px.batch_size={args.batch}", f"data.ce.batch_size={args.batch}", "sampler.buffer.size=1000",
             "sampler.buffer.init=uniform"]  # same p0 everywhere: the init is not what is timed
    cfg = load_config(preset, shape + overrides)
    info = DataInfo(3, 32, 10, "symmetric")
    model = prepare_model(build_model(cfg, info).to(device).train(), args.channels_last, args.compile)
    sampler = build_sampler(cfg, info) if cfg.needs_samples else None
    buffer = build_buffer(cfg, info, device) if sampler else None
    objective = JEMObjective(cfg.objective, sampler, buffer)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    plain = BatchTransform(False, 0, False, 0.0, "symmetric")
    x_lab, y_lab = plain(data.images[:args.batch].to(device)), data.labels[:args.batch].to(device)
    x_data = plain(data.images[args.batch:2 * args.batch].to(device)) if cfg.needs_samples else None

    def step():
        train_step(model, objective, optimizer, x_lab, y_lab, x_data, amp=lambda: autocast(args.precision, device))

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / args.iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast the forward passes")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (2 * args.batch, 3, 32, 32), dtype=torch.uint8),
                    torch.randint(0, 10, (2 * args.batch,)), 10, "synthetic", True)
    print(f"WRN-{args.depth}-{args.width} (BatchNorm), batch {args.batch}, 32x32x3, {device}, {args.precision}"
          f"{', channels-last' if args.channels_last else ''}{', compiled' if args.compile else ''}, "
          f"{args.iters} timed iterations after {args.warmup} warm-up")
    base = None
    print(f"{'method':<20} {'s/iter':>9} {'ratio':>7} {'ideal':>6}")
    for label, preset, overrides, ideal in METHODS:
        seconds = time_method(preset, overrides, args, data, device)
        base = base or seconds
        print(f"{label:<20} {seconds:9.4f} {seconds / base:7.2f} {ideal:6d}")


if __name__ == "__main__":
    main()
