"""Batched per-branch training transforms on uint8 tensors (docs/methods/shared.md, data).

JEM augments with reflect-pad + random crop + horizontal flip and adds Gaussian noise in the model
range. Doing it on whole batches keeps the data pipeline on the GPU with no worker processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hdgen_cli.config.schema import DataConfig, StreamConfig
from hdgen_cli.data.imageset import _check_range, to_model_range
from hdgen_cli.errors import UsageError


class BatchTransform:
    """uint8 [B, C, H, W] -> float model range, then optional pad/crop/flip and noise.

    Randomness comes from the global torch RNG of the batch's device, so torch.manual_seed
    makes a run reproducible.
    """

    def __init__(self, augment: bool, pad: int | None, flip: bool, sigma: float, pixel_range: str,
                 dequantize: bool = False):
        _check_range(pixel_range)
        if (pad is not None and pad < 0) or sigma < 0:
            raise UsageError(f"augmentation pad ({pad}) and noise sigma ({sigma}) must be >= 0")
        # pad None scales with the image: the standard 4-pixel CIFAR crop is 1/8 of the side, so an
        # 8x8 digit gets 1 pixel instead of being pushed half off the image.
        self.augment, self.pad, self.flip = bool(augment), None if pad is None else int(pad), bool(flip)
        self.sigma, self.pixel_range, self.dequantize = float(sigma), pixel_range, bool(dequantize)

    @classmethod
    def from_config(cls, stream: StreamConfig, data: DataConfig, default_flip: bool) -> "BatchTransform":
        """The transform of one stream (data.px or data.ce); aug_flip None means the dataset default."""
        flip = default_flip if data.aug_flip is None else data.aug_flip
        return cls(stream.augment, data.aug_pad, flip, stream.sigma, data.pixel_range, stream.dequantize)

    def __repr__(self) -> str:
        return (f"BatchTransform(augment={self.augment}, pad={self.pad}, flip={self.flip}, "
                f"sigma={self.sigma}, pixel_range={self.pixel_range!r})")

    def __call__(self, u8_batch: torch.Tensor) -> torch.Tensor:
        if self.dequantize:  # u = (uint8 + U(0, 1)) / 256: a continuous density over each pixel's bin (CLEL)
            u = (u8_batch.float() + torch.rand(u8_batch.shape, device=u8_batch.device)) / 256.0
            x = u if self.pixel_range == "unit" else u * 2.0 - 1.0
        else:
            x = to_model_range(u8_batch, self.pixel_range)
        if self.augment and x.shape[0] > 0:
            if self.pad_for(min(x.shape[-2:])) > 0:
                x = self._pad_crop(x)
            if self.flip:
                mirror = torch.rand(x.shape[0], device=x.device) < 0.5
                x = torch.where(mirror[:, None, None, None], x.flip(3), x)
        if self.sigma > 0:
            x = x + self.sigma * torch.randn_like(x)
        return x

    def pad_for(self, side: int) -> int:
        return side // 8 if self.pad is None else self.pad

    def _pad_crop(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.pad_for(min(h, w))
        if p >= h or p >= w:
            # Reflect padding cannot reach further than the image itself.
            raise UsageError(f"data.aug_pad={p} must be smaller than the image size {h}x{w}; lower data.aug_pad")
        padded = F.pad(x, (p, p, p, p), mode="reflect")
        # One crop offset per sample, gathered with broadcast index grids (no Python loop).
        dy = torch.randint(0, 2 * p + 1, (b,), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[bi, ci, rows, cols]
