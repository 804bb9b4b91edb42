"""The one prepared GPU check: every method's training step at paper size on one GPU.

Not a test: it prints figures measured in one run, sized to fit in 8 minutes on an H100-class GPU. For
jem, jempp-m10, sada-jem-k5, gmmc-gen, hdge (WRN-28-10, batch 64, SADA's CE batch 128) and
clel-small (its own networks), each in fp32 and bf16, contiguous and channels-last, and (for the
presets in --compile-presets, after all the rest) bf16 + channels-last + torch.compile, it prints
  - seconds per iteration (median) and minutes per CIFAR-10 epoch;
  - how far each variant's energies are from fp32's on the same weights and images: the largest
    difference over the largest |E| and over the energies' spread across the images (fp32 is
    PyTorch's default on a GPU, convolutions in TF32);
  - peak GPU memory;
  - the share of the device's dense bf16 peak reached: the FLOPs of one whole training
    iteration (counted by torch.utils.flop_counter, sampler and backward included) over its time.
Two more eager variants turn on `torch.backends.cudnn.benchmark` (cuDNN picks each convolution's
fastest algorithm for the fixed shapes). It ends with the speed-ups of channels-last over the
contiguous layout and of cudnn.benchmark on top, per preset and precision: the evidence for what
`train.channels_last=auto` should pick on a GPU (fp32 is the default precision) and whether
hdgen should turn cudnn.benchmark on there.
For jem in fp32 and bf16 + channels-last it also times the SGLD-20 loop replayed from one captured
CUDA graph against the eager loop, with their agreement (benchmarks/cuda_graph_sampler.py).
The target: a jempp-m10 epoch (703 iterations) in at most 60 s on an H100.

    python benchmarks/gpu_check.py                        # everything
    python benchmarks/gpu_check.py --presets jempp-m10 --compile-presets jempp-m10
    python benchmarks/gpu_check.py --device cpu --depth 10 --width 1 --iters 1 --warmup 0   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from iteration_cost import hdgen_step, rounds
from hdgen_cli.config.presets import list_presets
from hdgen_cli.models.fastpath import autocast

# Dense bf16 tensor-core peaks in TFLOP/s, by device-name fragment (vendor datasheets); the first match counts.
PEAKS = {"H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
         "L40S": 362.0, "RTX 4090": 165.0, "RTX 3090": 71.0}
PRESETS = ["jem", "jempp-m10", "sada-jem-k5", "gmmc-gen", "hdge", "clel-small"]


class Variant(NamedTuple):
    label: str
    precision: str
    channels_last: bool
    compile: bool = False
    cudnn_benchmark: bool = False  # cuDNN times its convolution algorithms once per shape and keeps the fastest


VARIANTS = [Variant("fp32", "fp32", False), Variant("fp32+cl", "fp32", True), Variant("bf16", "bf16", False),
            Variant("bf16+cl", "bf16", True), Variant("fp32+cl+bench", "fp32", True, cudnn_benchmark=True),
            Variant("bf16+cl+bench", "bf16", True, cudnn_benchmark=True),
            Variant("bf16+cl+compile", "bf16", True, compile=True)]
EXTRA = {"gmmc-gen": ["objective.gmmc.start_epoch=0"]}  # generation from the first iteration, as at steady state


def shape_overrides(preset: str, args) -> list[str]:
    common = ["sampler.buffer.size=10000", "sampler.buffer.init=uniform"]  # p0 is drawn for 5 % of chains only
    if preset.startswith("clel"):
        return common
    return ["model.name=wrn", f"model.depth={args.depth}", f"model.width={args.width}", *common]


def peak_tflops(name: str, override: float | None) -> float | None:
    return override or next((v for k, v in PEAKS.items() if k in name), None)


def iterations_per_epoch(cfg) -> int:
    images = 50_000 - cfg.data.n_valid
    batch = cfg.data.ce.batch_size if cfg.uses_ce_stream else cfg.data.px.batch_size
    return images // batch


def setup(preset, args, device, precision, channels_last, compile_):
    variant = argparse.Namespace(**{**vars(args), "precision": precision, "channels_last": channels_last,
                                    "compile": compile_})
    torch.manual_seed(0)  # the same initial weights in every variant: the energy gap compares them
    cfg, model, step, (x_lab, _, x_data) = hdgen_step(preset, EXTRA.get(preset, []), variant, device,
                                                      shape_overrides(preset, args))
    amp = lambda: autocast(precision, device)  # noqa: E731
    probe = x_data if x_data is not None else x_lab
    return cfg, model, step, amp, probe


class CountFlops(TorchDispatchMode):
    """FLOPs of every op torch's flop formulas know (convolutions, matmuls, their backward), with no
    module hooks: FlopCounterMode's hooks refuse the samplers' torch.autograd.grad calls."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:  # the registered formulas take tensors and read their shapes
            self.flops += formula(*args, **(kwargs or {}), out_val=out)
        return out


def graph_line(model, cfg, x, amp) -> str:
    """CUDA-graph replay of JEM's SGLD loop against the eager loop; a failure is one line, so the
    rest of the check still reports."""
    from cuda_graph_sampler import compare

    try:
        return compare(model, cfg, x, amp)
    except Exception as exc:  # noqa: BLE001 - an untried path on this GPU: report, do not stop
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def energies(model, amp, x) -> torch.Tensor:
    model.eval()
    with torch.no_grad(), amp():
        e = model.energy(x[:32]).float()
    model.train()
    return e


def energy_gaps(e: torch.Tensor, reference: torch.Tensor | None) -> tuple[float, float]:
    """The largest energy difference from fp32, over the largest |E| and over the spread (std) of the
    fp32 energies across the images. Energies share a large common offset (near -log 10 for every
    image at initialisation), so the first can look small while the second shows whether the
    images' order by energy, which OOD scores and sampling read, survives."""
    if reference is None:
        return float("nan"), float("nan")
    diff = (e - reference).abs().max()
    return float(diff / reference.abs().max().clamp_min(1e-12)), float(diff / reference.std().clamp_min(1e-12))


def measure(preset, variant, args, device, peak, references, flops) -> float:
    """One table row: time the variant's training step, its energies' gap to fp32 on the same
    weights and images, peak memory and FLOP rate; returns the seconds per iteration.
    `references` keeps each preset's fp32 energies and `flops` its FLOPs per iteration, counted
    once in the first (eager fp32) variant: every variant does the same arithmetic, and compiled
    kernels would hide their operations from the counter."""
    label, precision = variant.label, variant.precision
    torch.backends.cudnn.benchmark = variant.cudnn_benchmark
    cfg, model, step, amp, probe = setup(preset, args, device, precision, variant.channels_last, variant.compile)
    e = energies(model, amp, probe)  # before any step: the same weights for every variant
    if label == "fp32":
        references[preset] = e
    reference = references.get(preset)
    gap, spread = energy_gaps(e, reference)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(t[0] for t in rounds([step], args, device))
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    if preset not in flops:
        with CountFlops() as counter:
            step()
        flops[preset] = counter.flops
    tflops = flops[preset] / 1e12 / seconds
    share = f"{100 * tflops / peak:6.1f}%" if peak and precision == "bf16" else "     -"
    print(f"{preset:<12} {label:<16} {seconds:7.3f} {seconds * iterations_per_epoch(cfg) / 60:10.2f} "
          f"{gap:13.1e} {spread:10.1e} {memory:9.1f} {tflops:8.1f} {share:>7}", flush=True)
    if device.type == "cuda" and preset == "jem" and label in ("fp32", "bf16+cl"):
        print(f"  jem {label}, SGLD loop replayed from a CUDA graph: {graph_line(model, cfg, probe, amp)}", flush=True)
    del model, step  # free the device memory before the next variant
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def guarded(measure_fn, preset, variant, *rest) -> float | None:
    """A variant that fails (an untried kernel, a compiler error, memory) prints one line and the
    check goes on: on a borrowed GPU the other rows are worth more than a traceback."""
    try:
        return measure_fn(preset, variant, *rest)
    except Exception as exc:  # noqa: BLE001
        print(f"{preset:<12} {variant.label:<16} failed: {type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--depth", type=int, default=28)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--iters", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    parser.add_argument("--compile-presets", nargs="*", default=["jempp-m10"],
                        help="presets also timed with torch.compile, after all the others (compiling "
                             "WRN-28-10 takes minutes each)")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in PEAKS")
    args = parser.parse_args()
    unknown = sorted(set(args.presets + (args.compile_presets or [])) - set(list_presets()))
    if unknown:
        raise SystemExit(f"unknown preset(s) {', '.join(unknown)}: see `hdgen presets list`")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; `--device cpu` with a small --depth/--width is a smoke run")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = peak_tflops(name, args.peak_tflops)
    print(f"{name}; torch {torch.__version__}; WRN-{args.depth}-{args.width} (CLEL: its own networks); "
          f"medians over {args.iters} iterations after {args.warmup}\n")
    print(f"{'preset':<12} {'variant':<16} {'s/iter':>7} {'min/epoch':>10} {'gap to fp32':>13} {'of spread':>10} {'peak GiB':>9} "
          f"{'TFLOP/s':>8} {'% peak':>7}")
    started = time.perf_counter()
    timed: dict[tuple[str, str], float] = {}
    references: dict[str, torch.Tensor] = {}
    flops: dict[str, int] = {}
    eager = [v for v in VARIANTS if not v.compile]
    for preset in args.presets:
        for variant in eager:
            timed[preset, variant.label] = guarded(measure, preset, variant, args, device, peak, references, flops)
    pairs = [("fp32", "fp32+cl"), ("bf16", "bf16+cl"), ("fp32+cl", "fp32+cl+bench"), ("bf16+cl", "bf16+cl+bench")]
    print("\nspeed-ups (s/iter of the first over the second): channels-last, then cudnn.benchmark on top")
    print(f"{'preset':<12} " + " ".join(f"{a + ' -> ' + b:>25}" for a, b in pairs))
    for preset in args.presets:
        print(f"{preset:<12} " + " ".join(f"{timed[preset, a] / timed[preset, b]:>25.2f}"
                                          if timed[preset, a] and timed[preset, b] else f"{'-':>25}" for a, b in pairs),
              flush=True)
    compiled = [v for v in VARIANTS if v.compile]  # last: a run cut short by its time limit loses only these
    if args.compile_presets:
        print()
    for preset in args.compile_presets or []:
        for variant in compiled:
            guarded(measure, preset, variant, args, device, peak, references, flops)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
