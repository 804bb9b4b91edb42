"""hdgen's training iteration next to a re-statement of each official training step, interleaved.

Not a test: it prints times measured in one run. The reference steps (reference_steps.py) are
written for this benchmark from the papers and the project's method pages (docs/methods/), in the
official codes' style: plain PyTorch, one forward per batch, sampler gradients with the weights
left in the graph. Same passes, same order, same batch sizes as the official steps; nothing is
copied. Every stream's batch is --batch (64).

- JEM: three forwards (data, samples, CE batch) in train mode; SGLD-20 in eval mode with
  `retain_graph=True`; Adam.
- JEM++ (PYLD-M-5, "alltrain1"): every pass in BatchNorm train mode; data forward, then M outer
  steps (one full forward/backward each, its gradient reused for 5 clamped inner steps), then
  the samples' forward and the CE forward; 64 fresh full-covariance Gaussian images are drawn
  every iteration and 5 % of the chains restart from them; SGD.
- SADA-JEM (SGLD-5, clipped gradient, SAM): data forward, sampling, samples' forward, CE
  forward, backward; perturb the weights by rho g / ||g||; the same three forwards again with
  BatchNorm running statistics frozen; restore and step SGD.
- GMMC (Gen): data forward, a staged class-conditional chain of 20 noise-free clamped steps, the
  samples' forward; Adam.
- HDGE: a CE forward and a second forward of the same batch for L_con, whose negatives are
  formed as the official code does (the whole 65 536-logit queue normalised every step, a
  [B, C, K] one-hot product reduced over C); Adam. hdgen runs the same lse-onehot form.
- HDGE+JEM: JEM's p(x) term (data, SGLD-20, samples) plus HDGE's two labelled forwards.
CLEL has no row: its official step (an EBM, a SimCLR encoder, their EMA twins, strong
augmentations) is not re-stated here; iteration_cost.py shows hdgen's CLEL step at its ideal.
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

from iteration_cost import add_shape_args, build, hdgen_step, rounds, wrn_shape
from hdgen_cli.train import train_step
from reference_steps import (RefBuffer, RefQueue, RefWRN, gaussian_init, ref_ce, ref_gmmc_gen, ref_hdge, ref_hdge_jem,
                             ref_jem, ref_jempp, ref_sada)


def synthetic_train_set():
    """1 000 random CIFAR-shaped images in 10 classes: enough for the GM init's statistics."""
    from hdgen_cli.data import ImageSet

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(10).repeat(100), 10, "synthetic", True)


# (label, preset, BatchNorm, hdgen overrides)
ROWS = [("JEM SGLD-20", "jem", False, []), ("JEM++ PYLD-5-5", "jempp-m5", True, []),
        ("JEM++ PYLD-10-5", "jempp-m10", True, []),
        ("SADA-JEM K5 + SAM (CE batch 64)", "sada-jem-k5", True, []),
        ("GMMC gen tau-20", "gmmc-gen", False, ["objective.gmmc.start_epoch=0"]),
        # hdgen in the official code's lse-onehot form of L_con (its preset's eq. 15 form costs the same)
        ("HDGE (queue 65536)", "hdge", False, ["objective.hdge.positive=lse-onehot"]),
        ("HDGE+JEM SGLD-20", "hdge-jem", False, ["objective.hdge.positive=lse-onehot"])]


def reference_step(preset, cfg, args, bn, x_lab, y_lab, x_data):
    """The official step of `preset` on a fresh reference WRN, with that code's optimizer."""
    torch.manual_seed(0)
    ref = RefWRN(args.depth, args.width, bn, head=not preset.startswith("gmmc"))
    x_px = x_lab if x_data is None else x_data
    uniform = lambda n: torch.rand(n, 3, 32, 32) * 2 - 1  # noqa: E731
    if preset in ("jem", "hdge", "hdge-jem", "gmmc-gen"):
        opt = torch.optim.Adam(ref.parameters(), lr=1e-4)
        queue, buf = RefQueue(10, cfg.objective.hdge.queue_size), RefBuffer(1000, uniform)
        if preset == "jem":
            return lambda: ref_jem(ref, opt, buf, x_lab, y_lab, x_px)
        if preset == "hdge":
            return lambda: ref_hdge(ref, opt, queue, x_lab, y_lab)
        if preset == "hdge-jem":
            return lambda: ref_hdge_jem(ref, opt, queue, buf, x_lab, y_lab, x_px)
        centres = 10 * F.normalize(torch.randn(10, 64 * args.width), dim=1)  # any fixed means cost the same
        return lambda: ref_gmmc_gen(ref, opt, buf.images, centres, x_lab, y_lab, cfg.sampler.steps)
    opt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gm = gaussian_init(torch.cat([x_lab, x_px]))
    buf = RefBuffer(1000, gm)
    if preset.startswith("jempp"):
        return lambda: ref_jempp(ref, opt, buf, gm, x_lab, y_lab, x_data, cfg.sampler.steps)
    return lambda: ref_sada(ref, opt, buf, gm, x_lab, y_lab, x_data, cfg.sampler.steps)


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
    for label, preset, bn, overrides in ROWS:
        if args.only and not any(label.startswith(o) for o in args.only):
            continue
        shape = wrn_shape(args, "batch" if bn else "none")
        steps = []
        for layout in ("auto", "false"):  # hdgen's default layout, then the official codes' one
            args.channels_last = layout
            # hdgen's own p0 (the GM init for JEM++ and SADA, fitted to a synthetic training set)
            cfg, _, hdgen_step_fn, (x_lab, y_lab, x_data) = hdgen_step(preset, overrides, args, device, shape,
                                                                       train_set=synthetic_train_set())
            _, softmax_model, softmax_obj, softmax_opt = build("softmax", [], args, device, shape)
            hdgen_ce = functools.partial(train_step, softmax_model, softmax_obj, softmax_opt, x_lab, y_lab, None)
            steps.append((hdgen_step_fn, hdgen_ce))
        ref_step = reference_step(preset, cfg, args, bn, x_lab, y_lab, x_data)
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
