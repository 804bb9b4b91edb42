"""Sampler throughput: images x sampler steps per second for every sampler the presets use.

Not a test: it prints figures measured in one run on one machine. Each sampler runs on the same
backbone and batch; a "step" is one gradient evaluation of the full network (a PYLD outer step,
whose N inner first-layer steps ride along). The last column compares hdgen's SGLD loop with a
naive one (weights kept in the graph, `retain_graph=True`, as the official codes do).

    python benchmarks/sampler_throughput.py
    python benchmarks/sampler_throughput.py --depth 28 --width 10 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import statistics

import torch

from iteration_cost import add_layout_arg, batches, build, channels_last, rounds
from hdgen_cli.models.fastpath import autocast

# (label, preset, overrides)
SAMPLERS = [
    ("SGLD (JEM), eval mode", "jem", []),
    ("clipped SGLD (SADA), train mode", "sada-jem-k5", []),
    ("PYLD-M-5 (JEM++), train mode", "jempp-m10", []),
    ("GMMC staged", "gmmc-gen", ["objective.gmmc.start_epoch=0"]),
]


def naive_sgld(model, x, steps, step_size, noise):
    model.eval()
    x = x.clone().requires_grad_(True)
    for _ in range(steps):
        g = torch.autograd.grad(torch.logsumexp(model.scores(x), 1).sum(), [x], retain_graph=True)[0]
        x = (x + step_size * g + noise * torch.randn_like(x)).detach().requires_grad_(True)
    model.train()
    return x.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="sampler steps per timed call")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    add_layout_arg(parser)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = ["model.name=wrn", f"model.depth={args.depth}", f"model.width={args.width}", "model.norm=batch",
             "model.dropout=0", "sampler.buffer.size=1000", "sampler.buffer.init=uniform"]
    print(f"WRN-{args.depth}-{args.width} (BatchNorm), batch {args.batch}, 32x32x3, {device}, {args.precision}, "
          f"{'channels-last' if channels_last(args, device) else 'contiguous'}, "
          f"{args.steps} steps per call; medians over {args.iters} rounds\n")
    print(f"{'sampler':<34} {'images x steps / s':>19}")
    x, _, _ = batches(args, device)
    for label, preset, overrides in SAMPLERS:
        cfg, model, objective, _ = build(preset, overrides, args, device, shape)
        y = torch.arange(len(x), device=device) % 10 if preset.startswith("gmmc") else None

        def call():
            with autocast(args.precision, device):
                objective.sampler.run(model, x, y, steps=args.steps)
        seconds = statistics.median(t[0] for t in rounds([call], args, device))
        print(f"{label:<34} {args.batch * args.steps / seconds:19.1f}")

    cfg, model, objective, _ = build("jem", [], args, device, shape)
    s = cfg.sampler

    def hdgen_call():
        with autocast(args.precision, device):
            objective.sampler.run(model, x, steps=args.steps)

    def naive_call():
        with autocast(args.precision, device):
            naive_sgld(model, x, args.steps, s.step_size, s.noise)
    times = rounds([hdgen_call, naive_call], args, device)
    print(f"\nSGLD, hdgen against a naive loop (weights in the graph, retain_graph): naive/hdgen time "
          f"{statistics.median(n / h for h, n in times):.3f}")


if __name__ == "__main__":
    main()
