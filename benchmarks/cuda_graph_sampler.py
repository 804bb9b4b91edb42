"""JEM's SGLD loop replayed from one captured CUDA graph, against hdgen's eager loop.

Not a test and not part of hdgen yet: gpu_check.py calls `compare` on a GPU to find out whether
graph replay pays for the fixed-shape sampler loop. Every SGLD step has the same shapes, so one
step (forward, input gradient, update, noise) is captured once and replayed K times; only the
launch overhead can be saved, which matters when one step's kernels are small.

The graph reads and writes one static chain tensor. The weights stop requiring gradients while
it is captured and replayed, as in hdgen's sampler, so the captured backward reaches the input
only. Agreement is checked without noise (the RNG streams of the two loops differ).
"""

from __future__ import annotations

import time

import torch

from hdgen_cli.sampling import model_mode
from hdgen_cli.sampling.sgld import SGLDSampler


def capture_sgld(model, x0: torch.Tensor, step_size: float, noise: float, amp, warmup: int = 3):
    """A function (x, k) -> x after k SGLD steps, each a replay of one captured step."""
    static_x = x0.detach().clone()

    def one_step() -> torch.Tensor:
        x = static_x.detach().requires_grad_(True)
        with amp():
            energy = model.energy(x).float().sum()
        (grad,) = torch.autograd.grad(energy, x)
        return static_x - step_size * grad + noise * torch.randn_like(static_x)

    side = torch.cuda.Stream()  # warm-up on a side stream, as graph capture requires
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            one_step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = one_step()

    def run(x: torch.Tensor, k: int) -> torch.Tensor:
        static_x.copy_(x)
        for _ in range(k):
            graph.replay()
            static_x.copy_(static_out)
        return static_x.clone()

    return run


def _seconds(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def compare(model, cfg, x: torch.Tensor, amp, steps: int = 20) -> str:
    """One line: eager and graphed seconds for `steps` SGLD steps on `x`, and their largest
    difference over a noise-free chain of the same length."""
    s = cfg.sampler
    with model_mode(model, s.model_mode):
        quiet = capture_sgld(model, x, s.step_size, 0.0, amp)
        noisy = capture_sgld(model, x, s.step_size, s.noise, amp)
        eager_quiet = SGLDSampler(steps, s.step_size, 0.0, mode=s.model_mode)
        with amp():
            gap = float((quiet(x, steps) - eager_quiet.run(model, x)).abs().max())
        eager = SGLDSampler(steps, s.step_size, s.noise, mode=s.model_mode)

        def eager_run():
            with amp():
                eager.run(model, x)
        t_eager, t_graph = _seconds(eager_run), _seconds(lambda: noisy(x, steps))
    return (f"SGLD-{steps}: eager {t_eager:.3f} s, CUDA graph {t_graph:.3f} s, speed-up x{t_eager / t_graph:.2f}; "
            f"noise-free chains differ by at most {gap:.1e}")
