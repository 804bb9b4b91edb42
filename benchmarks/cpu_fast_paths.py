"""What the fast-path switches buy on a CPU: hdgen's training step in the contiguous layout (the
official codes') and in channels-last (hdgen's CPU default, `train.channels_last=auto`), and with
--compile also channels-last + torch.compile, the variants interleaved in every round.

Not a test: it prints times measured in one run. WRN-10-2, batch 64, float32, synthetic data.
Agreement of the variants with contiguous float32 is a test (tests/models/test_fastpath.py).

    python benchmarks/cpu_fast_paths.py                  # jempp-m5 and jem, about 2 minutes
    python benchmarks/cpu_fast_paths.py --compile        # adds channels-last + compile
    python benchmarks/cpu_fast_paths.py --all --iters 2  # every method's preset, about 5 minutes
"""

from __future__ import annotations

import argparse
import statistics

import torch

from hdgen_cli.parts import DataInfo
from hdgen_cli.train import train_step
from iteration_cost import add_shape_args, batches, build, clel_shape, hdgen_step, rounds, wrn_shape
from vs_reference import synthetic_train_set

PRESETS = [("jempp-m5", "batch"), ("jem", "none")]
# --all: every method's preset on the benchmark WRN, plus the two presets with their own networks
ALL = [("softmax", "batch"), ("jem", "none"), ("jempp-m5", "batch"), ("sada-jem-k5", "batch"),
       ("gmmc-dis", "none"), ("gmmc-gen", "none"), ("hdge", "none"), ("quickstart", None), ("clel-small", None)]
OVERRIDES = {"gmmc-gen": ["objective.gmmc.start_epoch=0"]}  # wrn_shape already sets SADA's CE batch


def step(preset, norm, args, channels_last, compile_):
    """hdgen's training step of `preset`: on the benchmark WRN, or (norm None) on the preset's own
    networks at its own image shape (quickstart: 8x8 digits; CLEL: its EBM and encoder)."""
    variant = argparse.Namespace(**{**vars(args), "channels_last": channels_last, "compile": compile_,
                                    "precision": "fp32"})
    cpu = torch.device("cpu")
    if norm is not None:
        _, _, fn, _ = hdgen_step(preset, OVERRIDES.get(preset, []), variant, cpu, wrn_shape(args, norm),
                                 train_set=synthetic_train_set())
        return fn
    if preset == "clel-small":
        _, model, objective, optimizer = build(preset, [], variant, cpu, clel_shape(args))
        x = batches(args, cpu, "unit")[2]
        return lambda: train_step(model, objective, optimizer, None, None, x)
    info = DataInfo(1, 8, 10, "symmetric")  # the quickstart's bundled digits
    _, model, objective, optimizer = build(preset, [], variant, cpu, [], info=info)
    x, x_data = (torch.rand(args.batch, 1, 8, 8) * 2 - 1 for _ in range(2))
    y = torch.randint(0, 10, (args.batch,))
    return lambda: train_step(model, objective, optimizer, x, y, x_data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(parser, iters=4, warmup=1)
    parser.add_argument("--compile", action="store_true", help="also time channels-last + torch.compile")
    parser.add_argument("--all", action="store_true", help="every method's preset (about 5 minutes at --iters 2)")
    args = parser.parse_args()
    print(f"WRN-{args.depth}-{args.width}, batch {args.batch}, CPU float32, {torch.get_num_threads()} threads; "
          f"{args.iters} interleaved rounds after {args.warmup} warm-up; medians\n")
    variants = [("contiguous", False, False), ("channels-last", True, False)]
    if args.compile:
        variants.append(("channels-last + compile", True, True))
    for preset, norm in ALL if args.all else PRESETS:
        fns = [step(preset, norm, args, cl, comp) for _, cl, comp in variants]
        times = rounds(fns, args, torch.device("cpu"))
        cells = [f"{name} {statistics.median(t[i] for t in times):.3f} s" for i, (name, _, _) in enumerate(variants)]
        gains = [f"x{statistics.median(t[0] / t[i] for t in times):.2f}" for i in range(1, len(variants))]
        print(f"{preset:<12} " + " | ".join(cells) + "   speed-up over contiguous: " + ", ".join(gains), flush=True)


if __name__ == "__main__":
    main()
