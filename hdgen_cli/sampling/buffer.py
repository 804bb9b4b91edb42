"""Replay buffer of persistent chains (docs/methods/shared.md, replay buffer).

Slots [c*N/C, (c+1)*N/C) belong to class c; the blocks matter only for conditional draws.
A draw picks B slots (without replacement within the batch, so write-backs never collide),
restarts each chain from p0 with probability `reinit`, and the caller writes the refined
chains back to the same slots with `update`.
"""

from __future__ import annotations

import torch

from hdgen_cli.errors import CheckpointError
from hdgen_cli.sampling.init import InitDistribution


class ReplayBuffer:
    def __init__(self, size: int, shape: tuple[int, ...], num_classes: int, reinit: float,
                 init: InitDistribution, device="cpu"):
        if num_classes > 0 and size % num_classes:
            raise ValueError(f"buffer size {size} must be a multiple of the {num_classes} classes")
        self.size, self.num_classes, self.reinit, self.init = size, num_classes, reinit, init
        classes = max(num_classes, 1)
        self.labels = torch.arange(classes, device=device).repeat_interleave(size // classes)
        self.images = init(size, self.labels if num_classes else None).to(device)
        assert self.images.shape == (size, *shape)

    @property
    def block(self) -> int:
        return self.size // max(self.num_classes, 1)

    def draw_indices(self, batch: int, y: torch.Tensor | None = None) -> torch.Tensor:
        dev = self.images.device
        if y is None:
            if batch <= self.size:
                return torch.randperm(self.size, device=dev)[:batch]
            return torch.randint(0, self.size, (batch,), device=dev)
        # Conditional: slot uniform inside block y_i; distinct slots within a class when it fits.
        idx = torch.empty(len(y), dtype=torch.long, device=dev)
        for c in torch.unique(y).tolist():
            where = (y == c).nonzero(as_tuple=True)[0]
            k = len(where)
            offs = torch.randperm(self.block, device=dev)[:k] if k <= self.block else torch.randint(0, self.block, (k,), device=dev)
            idx[where] = c * self.block + offs
        return idx

    def draw(self, batch: int, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Starting points for `batch` chains and the slots they came from."""
        idx = self.draw_indices(batch, y)
        x = self.images[idx].clone()
        restart = torch.rand(batch, device=x.device) < self.reinit
        if restart.any():
            # Conditional chains restart in their class; unconditional ones draw the class from p0.
            fresh = self.init(int(restart.sum()), y[restart] if y is not None else None)
            x[restart] = fresh.to(x.dtype)
        return x, idx

    def update(self, idx: torch.Tensor, x: torch.Tensor) -> None:
        self.images[idx] = x.detach().to(self.images.dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": self.images, "labels": self.labels}

    def reset(self) -> None:
        """Every chain restarts from p0 (the divergence guard's reset_buffer remedy)."""
        self.images.copy_(self.init(self.size, self.labels if self.num_classes else None).to(self.images))

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != {"images", "labels"} or state["images"].shape != self.images.shape:
            shape = tuple(state["images"].shape) if "images" in state else "none"
            raise CheckpointError(f"the saved replay buffer has shape {shape}, this run's is {tuple(self.images.shape)}; "
                                  "resume with the same sampler.buffer.size and data")
        self.images.copy_(state["images"])
        self.labels.copy_(state["labels"])
