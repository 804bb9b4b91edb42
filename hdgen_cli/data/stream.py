"""Infinite, shuffled, drop-last batch stream with resumable state (docs/methods/shared.md, data).

The permutation comes from the stream's own CPU generator, never the global RNG, so the data
order is independent of the sampler's randomness and a resumed run sees the same batches.
"""

from __future__ import annotations

import torch

from hdgen_cli.data.imageset import ImageSet
from hdgen_cli.data.transforms import BatchTransform
from hdgen_cli.errors import CheckpointError, DataError


class BatchStream:
    """Yields (transformed images, labels) batches forever; reshuffles after each full pass."""

    def __init__(self, data: ImageSet, batch_size: int, transform: BatchTransform, seed: int):
        if batch_size < 1 or len(data) < batch_size:
            raise DataError(
                f"dataset {data.name} has {len(data)} training images, fewer than batch size {batch_size}; "
                "lower data.px.batch_size/data.ce.batch_size"
            )
        self.data, self.batch_size, self.transform = data, batch_size, transform
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0  # completed passes
        self.position = 0
        self.perm = self._shuffle()

    def __len__(self) -> int:
        return len(self.data) // self.batch_size  # drop_last: a partial batch would skew the loss

    def _shuffle(self) -> torch.Tensor:
        return torch.randperm(len(self.data), generator=self.generator)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.perm[self.position:self.position + self.batch_size].to(self.data.images.device)
        self.position += self.batch_size
        if self.position + self.batch_size > len(self.data):
            # Pass finished (the tail is dropped): count it and shuffle now, so the saved state
            # always holds the permutation the next batch comes from.
            self.epoch += 1
            self.position = 0
            self.perm = self._shuffle()
        return self.transform(self.data.images[idx]), self.data.labels[idx]

    __next__ = next

    def __iter__(self):
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only, so it can be stored in a safetensors file."""
        return {
            "generator": self.generator.get_state().clone(),
            "perm": self.perm.clone(),
            "position": torch.tensor(self.position, dtype=torch.long),
            "epoch": torch.tensor(self.epoch, dtype=torch.long),
            "batch_size": torch.tensor(self.batch_size, dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = {"generator", "perm", "position", "epoch"} - set(state)
        if missing:
            raise CheckpointError(f"data stream state lacks {', '.join(sorted(missing))}: the checkpoint is incomplete; start a fresh run")
        perm = state["perm"].to("cpu", torch.long)
        if perm.numel() != len(self.data):
            raise CheckpointError(
                f"data stream state is for {perm.numel()} images but {self.data.name} has {len(self.data)}: "
                "resume with the same data settings (name, n_valid, split_seed)"
            )
        if "batch_size" in state and int(state["batch_size"]) != self.batch_size:
            raise CheckpointError(
                f"data stream state is for batch size {int(state['batch_size'])}, not {self.batch_size}: "
                "resume with the same data.px/data.ce batch_size"
            )
        self.generator.set_state(state["generator"].to("cpu", torch.uint8).contiguous())
        self.perm = perm.clone()
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])
