"""Minutes per CIFAR-10 epoch at paper scale on one GPU: WRN-28-10, batch 64, synthetic 32x32x3 data.

Not a test (it needs a CUDA GPU): it prints figures measured in one run. For jempp-m10,
sada-jem-k5 and jem it times hdgen's training step with each preset's own sampler, optimizer
and streams, then reports
  - seconds per iteration and minutes per epoch (703 iterations on the 45k split for jem and
    jempp, 390 for SADA's 50k images at CE batch 128: SPEC §8 pitfall 6);
  - the fraction of the device's peak dense bf16 throughput reached (model FLOPs utilisation):
    the forward FLOPs of one image F (counted by torch.utils.flop_counter) times 3 for each image
    of a training pass (forward, input and weight gradients) and 2 for each image-step of the
    sampler (forward, input gradient), over the iteration's time and the peak;
  - peak GPU memory.
The paper's figures: JEM++ M=10 20.1 min/epoch on one RTX GPU; the target here is at most
1 minute per jempp-m10 epoch on one H100.

    python benchmarks/gpu_epoch.py                      # bf16, channels-last
    python benchmarks/gpu_epoch.py --precision fp32 --compile
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from iteration_cost import batches, build, rounds
from hdgen_cli.train import train_step
from hdgen_cli.train.fastpath import autocast

# (preset, iterations per CIFAR-10 epoch, images in training passes, image-steps of the sampler) per iteration
PRESETS = [("jempp-m10", 703, 3 * 64, 10 * 64),         # data, samples, CE; M = 10 outer steps
           ("sada-jem-k5", 390, 2 * (64 + 64 + 128), 5 * 64),  # SAM runs the three passes twice
           ("jem", 703, 3 * 64, 20 * 64)]
# Dense bf16 tensor-core peaks in TFLOP/s, by device-name fragment (vendor datasheets).
PEAKS = {"H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
         "L40S": 362.0, "RTX 4090": 165.0, "RTX 3090": 71.0}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAKS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=28)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    parser.add_argument("--presets", nargs="*", default=[p[0] for p in PRESETS])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_epoch.py needs a CUDA GPU; on CPU run benchmarks/iteration_cost.py")
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak = peak_tflops(name, args.peak_tflops)
    print(f"{name}; WRN-{args.depth}-{args.width}, each preset's batches (64, SADA's CE stream 128), "
          f"{args.precision}{', channels-last' if args.channels_last else ''}{', compiled' if args.compile else ''}; "
          f"torch {torch.__version__}; medians over {args.iters} iterations after {args.warmup}\n")
    print(f"{'preset':<12} {'s/iter':>7} {'min/epoch':>10} {'TFLOP/iter':>11} {'TFLOP/s':>8} {'% peak':>7} {'peak GiB':>9}")
    # U[-1, 1] p0 instead of the GM: the mixture needs real training images, and p0 is drawn for 5 % of chains only
    shape = ["model.name=wrn", f"model.depth={args.depth}", f"model.width={args.width}", "sampler.buffer.size=10000",
             "sampler.buffer.init=uniform"]
    for preset, iters_per_epoch, train_images, sampler_images in PRESETS:
        if preset not in args.presets:
            continue
        cfg, model, objective, optimizer = build(preset, [], args, device, shape)
        ce_batch, px_batch = cfg.data.ce.batch_size, cfg.data.px.batch_size
        torch.manual_seed(0)
        x_lab, y_lab, _ = batches(argparse.Namespace(batch=ce_batch), device)
        _, _, x_data = batches(argparse.Namespace(batch=px_batch), device)
        x_data = x_data if cfg.uses_px_stream else None
        amp = lambda: autocast(args.precision, device)  # noqa: E731

        def step():
            train_step(model, objective, optimizer, x_lab, y_lab, x_data, amp=amp)
        torch.cuda.reset_peak_memory_stats(device)
        seconds = statistics.median(t[0] for t in rounds([step], args, device))
        memory = torch.cuda.max_memory_allocated(device) / 2**30
        model.eval()  # a one-image forward: BatchNorm needs running statistics
        with FlopCounterMode(display=False) as counter, torch.no_grad(), amp():
            model.scores(x_lab[:1])
        model.train()
        tflop = counter.get_total_flops() * (3 * train_images + 2 * sampler_images) / 1e12
        share = f"{100 * tflop / seconds / peak:6.1f}%" if peak else "     -"
        print(f"{preset:<12} {seconds:7.3f} {seconds * iters_per_epoch / 60:10.2f} {tflop:11.2f} "
              f"{tflop / seconds:8.1f} {share:>7} {memory:9.1f}")
        model = objective = optimizer = step = None  # free the GPU memory before the next preset
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
