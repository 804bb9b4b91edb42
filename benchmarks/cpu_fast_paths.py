"""What the fast-path switches buy on a CPU: hdgen's training step with and without channels-last
(and, with --compile, torch.compile), the two variants interleaved in every round.

Not a test: it prints times measured in one run. WRN-10-2, batch 64, float32, synthetic data.
Agreement with the default path is a test (tests/test_fastpath.py).

    python benchmarks/cpu_fast_paths.py                  # jempp-m5 and jem, about 2 minutes
    python benchmarks/cpu_fast_paths.py --compile        # adds channels-last + compile
"""

from __future__ import annotations

import argparse
import statistics

import torch

from iteration_cost import add_shape_args, hdgen_step, rounds, wrn_shape
from vs_reference import synthetic_train_set

PRESETS = [("jempp-m5", "batch"), ("jem", "none")]


def step(preset, norm, args, channels_last, compile_):
    variant = argparse.Namespace(**{**vars(args), "channels_last": channels_last, "compile": compile_,
                                    "precision": "fp32"})
    _, _, fn, _ = hdgen_step(preset, [], variant, torch.device("cpu"), wrn_shape(args, norm),
                             train_set=synthetic_train_set())
    return fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(parser, iters=4, warmup=1)
    parser.add_argument("--compile", action="store_true", help="also time channels-last + torch.compile")
    args = parser.parse_args()
    print(f"WRN-{args.depth}-{args.width}, batch {args.batch}, CPU float32, {torch.get_num_threads()} threads; "
          f"{args.iters} interleaved rounds after {args.warmup} warm-up; medians\n")
    variants = [("default", False, False), ("channels-last", True, False)]
    if args.compile:
        variants.append(("channels-last + compile", True, True))
    for preset, norm in PRESETS:
        fns = [step(preset, norm, args, cl, comp) for _, cl, comp in variants]
        times = rounds(fns, args, torch.device("cpu"))
        cells = [f"{name} {statistics.median(t[i] for t in times):.3f} s" for i, (name, _, _) in enumerate(variants)]
        gains = [f"x{statistics.median(t[0] / t[i] for t in times):.2f}" for i in range(1, len(variants))]
        print(f"{preset:<10} " + " | ".join(cells) + "   speed-up over default: " + ", ".join(gains), flush=True)


if __name__ == "__main__":
    main()
