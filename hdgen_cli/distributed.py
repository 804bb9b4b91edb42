"""Several processes under torchrun: `torchrun --nproc-per-node N -m hdgen_cli train ...`.

Each process (rank) trains on its own shard of the data with its own replay buffer; gradients are
averaged by DistributedDataParallel (NCCL on GPUs, gloo on CPU); only rank 0 writes checkpoints,
logs and stdout. Evaluation shards its rows the same way and gathers the per-row results back in
order, so every metric is computed on the whole set. A single process never touches
torch.distributed: every helper here is the identity when WORLD_SIZE is unset or 1.
"""

from __future__ import annotations

import inspect
import math
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

_COMM_DEVICE = torch.device("cpu")  # where collectives run: the rank's GPU under NCCL, the CPU under gloo


def launched() -> bool:
    """Started by torchrun (or any launcher that sets WORLD_SIZE) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group once when launched (NCCL for CUDA, gloo otherwise); return this rank's
    device (cuda:LOCAL_RANK for CUDA)."""
    global _COMM_DEVICE
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _COMM_DEVICE = device if device.type == "cuda" else torch.device("cpu")
    return device


def teardown() -> None:
    """Leave the process group: wait for every rank first, so no rank closes its connections while
    another still exchanges its last message (gloo aborts the process when that happens)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def shard_indices(n: int, drop_last: bool = False) -> torch.Tensor:
    """This rank's rows of n: rank, rank + world, ... `drop_last` trims every shard to n // world
    rows so all ranks run the same number of training iterations."""
    idx = torch.arange(rank(), n, world_size())
    return idx[: n // world_size()] if drop_last else idx


def gather_rows(local: torch.Tensor, n: int) -> torch.Tensor:
    """Undo `shard_indices(n)`: every rank's per-row results, back in row order on every rank."""
    world = world_size()
    if world == 1:
        return local
    per = math.ceil(n / world)
    padded = torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=_COMM_DEVICE)
    padded[: len(local)] = local.to(_COMM_DEVICE)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    out = torch.empty((n, *local.shape[1:]), dtype=local.dtype, device=local.device)
    for r, part in enumerate(parts):
        out[r::world] = part[: len(range(r, n, world))].to(local.device)
    return out


def map_rows(fn, *tensors: torch.Tensor) -> torch.Tensor:
    """fn(*rows) on this rank's shard of `tensors` (same length), results gathered for all rows."""
    n = len(tensors[0])
    if world_size() == 1:
        return fn(*tensors)
    idx = shard_indices(n)
    return gather_rows(fn(*(t[idx.to(t.device)] for t in tensors)), n)


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average logged scalars over ranks (one small all-reduce)."""
    if world_size() == 1 or not values:
        return values
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=_COMM_DEVICE)
    dist.all_reduce(t)
    return {k: float(v) / world_size() for k, v in zip(values, t.tolist())}


def max_tensor(t: torch.Tensor) -> torch.Tensor:
    """Elementwise maximum over ranks (the divergence guard's window, so every rank decides alike)."""
    if world_size() == 1:
        return t
    t = t.detach().float().to(_COMM_DEVICE).clone()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def average_buffers(model: nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) over ranks before evaluating or saving."""
    if world_size() == 1:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            t = buf.to(_COMM_DEVICE)
            dist.all_reduce(t)
            buf.copy_(t / world_size())


def gather_to_main(obj):
    """Every rank's `obj` (CPU tensors, plain data) in a list on rank 0, None on the others: the
    per-rank state a checkpoint keeps (buffers, data positions, RNG)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def share_from_main(fn):
    """fn() on rank 0, its result (or its error) broadcast to every rank: one run directory, one
    decision, and no rank left waiting when rank 0 fails."""
    if world_size() == 1:
        return fn()
    box = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as exc:  # re-raised on every rank below
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel over `module` (rank 0's weights are broadcast on construction).
    Running statistics stay per rank and are averaged before evaluation and checkpoints."""
    # Buffers are synced once at construction, never per forward (newer torch renamed the switch).
    no_forward_sync = ({"forward_sync_buffers": False}
                       if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                       else {"broadcast_buffers": False})
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   **no_forward_sync)


class Replicated:
    """The training model seen through DistributedDataParallel. Objectives call it like the model
    (`scores`, `energy`, `half_sq_distances`, ...); those calls go through DDP's forward so the
    backward averages gradients. Everything else (samplers, BatchNorm mode, buffers) reaches the
    plain module: sampler passes need no gradient sync."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.module, self.ddp = model, data_parallel(model, device)

    def __getattr__(self, name):
        attr = getattr(self.module, name)
        if name in getattr(self.module, "forward_methods", ()):
            return lambda *args, **kwargs: self.ddp(*args, method=name, **kwargs)
        return attr


def unwrap(model):
    """The plain module behind a `Replicated` model (or the model itself)."""
    return model.module if isinstance(model, Replicated) else model


def replicate(model: nn.Module, device: torch.device):
    """`Replicated(model)` when several processes train, else the model unchanged."""
    return Replicated(model, device) if world_size() > 1 else model


def replicate_module(module: nn.Module, device: torch.device) -> nn.Module:
    """`data_parallel(module)` when several processes train, else the module unchanged."""
    return data_parallel(module, device) if world_size() > 1 else module
